using System.Diagnostics;

namespace Lab.Tests;

/// <summary>The tests' one "eventually": a condition on a reading the test cannot be signalled about (a kernel queue, /proc).</summary>
public static class Eventually
{
    /// <summary>
    /// Polls <paramref name="condition"/> every 10 ms until it holds (true) or <paramref name="within"/> (default 5 s)
    /// passes or the test is cancelled (false). Assert on the result, with a message that shows the last reading.
    /// </summary>
    public static bool Holds(Func<bool> condition, TimeSpan? within = null)
    {
        var sw = Stopwatch.StartNew();
        var limit = within ?? TimeSpan.FromSeconds(5);
        var ct = TestContext.Current.CancellationToken;
        while (true)
        {
            if (condition()) return true;
            if (sw.Elapsed > limit || ct.IsCancellationRequested) return false;
            Thread.Sleep(10);
        }
    }
}

/// <summary>
/// A deliberate wait in which nothing may happen, or in which the machine settles: the opposite of a signal, so it is a
/// sleep, named so a reader does not take it for synchronisation. Say what the window is for.
/// </summary>
public static class Window
{
    public static void Of(TimeSpan length, string why)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(why);
        Thread.Sleep(length);
    }
}
