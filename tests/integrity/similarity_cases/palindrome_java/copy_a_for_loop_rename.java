import java.util.Scanner;

public class Main {
    // True when s reads the same both ways, ignoring case and anything but letters and digits.
    static boolean isPalindrome(String s) {
        // two pointers from both ends
        int lo, hi;
        for (lo = 0, hi = s.length() - 1; lo < hi; ) {
            char x = s.charAt(lo);
            char y = s.charAt(hi);
            if (!Character.isLetterOrDigit(x)) {
                lo++;
            } else if (!Character.isLetterOrDigit(y)) {
                hi--;
            } else {
                if (Character.toLowerCase(x) != Character.toLowerCase(y)) {
                    return false;
                }
                lo++;
                hi--;
            }
        }
        return true;
    }

    public static void main(String[] args) {
        Scanner in = new Scanner(System.in);
        while (in.hasNextLine()) {
            System.out.println(isPalindrome(in.nextLine()) ? "yes" : "no");
        }
    }
}
