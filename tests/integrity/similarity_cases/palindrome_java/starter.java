import java.util.Scanner;

public class Main {
    // True when s reads the same both ways, ignoring case and anything but letters and digits.
    static boolean isPalindrome(String s) {
        return false;
    }

    public static void main(String[] args) {
        Scanner in = new Scanner(System.in);
        while (in.hasNextLine()) {
            System.out.println(isPalindrome(in.nextLine()) ? "yes" : "no");
        }
    }
}
