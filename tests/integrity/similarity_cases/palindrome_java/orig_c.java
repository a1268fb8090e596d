import java.util.ArrayList;
import java.util.List;
import java.util.Scanner;

public class Main {
    // True when s reads the same both ways, ignoring case and anything but letters and digits.
    static boolean isPalindrome(String s) {
        List<Character> chars = new ArrayList<>();
        for (int i = 0; i < s.length(); i++) {
            char c = Character.toLowerCase(s.charAt(i));
            if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
                chars.add(c);
            }
        }
        return check(chars, 0, chars.size() - 1);
    }

    private static boolean check(List<Character> chars, int from, int to) {
        if (from >= to) {
            return true;
        }
        if (!chars.get(from).equals(chars.get(to))) {
            return false;
        }
        return check(chars, from + 1, to - 1);
    }

    public static void main(String[] args) {
        Scanner in = new Scanner(System.in);
        while (in.hasNextLine()) {
            System.out.println(isPalindrome(in.nextLine()) ? "yes" : "no");
        }
    }
}
