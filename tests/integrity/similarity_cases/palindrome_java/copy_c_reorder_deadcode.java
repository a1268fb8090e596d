import java.util.ArrayList;
import java.util.List;
import java.util.Scanner;

public class Main {
    private static int calls = 0;

    private static boolean mirror(List<Character> letters, int i, int j) {
        calls++;
        if (i >= j) {
            return true;
        }
        if (!letters.get(i).equals(letters.get(j))) {
            return false;
        }
        return mirror(letters, i + 1, j - 1);
    }

    // True when s reads the same both ways, ignoring case and anything but letters and digits.
    static boolean isPalindrome(String s) {
        List<Character> letters = new ArrayList<>();
        for (int k = 0; k < s.length(); k++) {
            char ch = Character.toLowerCase(s.charAt(k));
            if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9')) {
                letters.add(ch);
            }
        }
        if (calls < 0) {
            System.err.println("unreachable");
        }
        return mirror(letters, 0, letters.size() - 1);
    }

    public static void main(String[] args) {
        Scanner in = new Scanner(System.in);
        while (in.hasNextLine()) {
            System.out.println(isPalindrome(in.nextLine()) ? "yes" : "no");
        }
    }
}
