// A tiny spinning Java program for the JIT-map sample (see ../README.md).
public class Spin {
  static long f(long x) {
    for (int i = 0; i < 1000; i++)
      x = x * 6364136223846793005L + 1442695040888963407L;
    return x;
  }

  static long g(long x) {
    return f(x) ^ f(x + 1);
  }

  public static void main(String[] args) throws Exception {
    long end = System.currentTimeMillis() + Long.parseLong(args[0]) * 1000L;
    long acc = 0;
    while (System.currentTimeMillis() < end)
      acc += g(acc);
    System.out.println(acc);
  }
}
