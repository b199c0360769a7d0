using Lab.Sockets;

namespace Lab.Tests.Sockets;

public class CpuAffinityTests
{
    [Fact]
    public void ThisThreadMayRunOnTheCpusProcStatusLists()
    {
        // Cpus_allowed_list is "0-1" or "0,2-3": expand its ranges and compare.
        var line = File.ReadLines("/proc/thread-self/status").Single(l => l.StartsWith("Cpus_allowed_list:"));
        var expected = line.Split(':')[1].Trim().Split(',').SelectMany(part =>
        {
            var ends = part.Split('-').Select(int.Parse).ToArray();
            return Enumerable.Range(ends[0], ends[^1] - ends[0] + 1);
        });
        Assert.Equal(expected, CpuAffinity.Of());
    }

    [Fact]
    public void ConfineNarrowsOnlyTheCallingThread()
    {
        var all = CpuAffinity.Of();
        int[]? inside = null;
        var t = new Thread(() => { CpuAffinity.Confine([all[^1]]); inside = CpuAffinity.Of(); });
        t.Start();
        t.Join();
        Assert.Equal([all[^1]], inside!);
        Assert.Equal(all, CpuAffinity.Of());
    }

    [Fact]
    public void BadCpusAreNamed()
    {
        Assert.Throws<ArgumentException>(() => CpuAffinity.Confine([]));
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => CpuAffinity.Confine([4096]));
        Assert.Contains("CPU 4096", e.Message);
    }
}
