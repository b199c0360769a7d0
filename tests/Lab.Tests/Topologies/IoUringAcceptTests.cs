using System.Diagnostics;
using Lab.Topologies;
using static Lab.Tests.Topologies.TopologyKit;

namespace Lab.Tests.Topologies;

/// <summary>What sets the io_uring model apart, counted by the kernel: its threads' system calls, read with perf.</summary>
public class IoUringAcceptTests
{
    static readonly string[] Calls = ["accept4", "accept", "epoll_wait", "epoll_pwait", "read", "recvfrom", "sendto", "io_uring_enter"];

    /// <summary>
    /// perf stat counting <see cref="Calls"/> on the threads <paramref name="tids"/> (and only those: other tests run in
    /// this process at the same time) while <paramref name="traffic"/> runs. perf prints a line per event every
    /// 100 ms; its first line says it is attached, so the traffic starts only then.
    /// </summary>
    static Dictionary<string, long> CountSyscalls(IEnumerable<int> tids, Action traffic) => CountSyscalls(tids, traffic, out _);

    static Dictionary<string, long> CountSyscalls(IEnumerable<int> tids, Action traffic, out string perfSaid)
    {
        var psi = new ProcessStartInfo("perf") { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var a in new[] { "stat", "-x,", "-I", "100", "-t", string.Join(",", tids), "-e", string.Join(",", Calls.Select(c => "syscalls:sys_enter_" + c)) })
            psi.ArgumentList.Add(a);
        using var perf = Process.Start(psi)!;
        var lines = new List<string>();
        var attached = new ManualResetEventSlim();
        perf.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (lines) lines.Add(e.Data);
            if (e.Data.Contains(",syscalls:sys_enter_", StringComparison.Ordinal)) attached.Set();   // an interval's count line
        };
        perf.BeginErrorReadLine();
        try
        {
            if (!attached.Wait(TimeSpan.FromSeconds(20)))
                lock (lines) Assert.Fail("perf stat counted nothing within 20 s. It said:\n" + string.Join("\n", lines.Take(20)));
            traffic();
        }
        finally
        {
            Tmds.Linux.LibC.kill(perf.Id, Tmds.Linux.LibC.SIGINT);
            if (!perf.WaitForExit(TimeSpan.FromSeconds(10))) perf.Kill();
            perf.WaitForExit();
        }
        var counts = Calls.ToDictionary(c => c, _ => 0L);
        lock (lines) perfSaid = string.Join("\n", lines.Take(20));
        lock (lines)
            foreach (var line in lines)
            {
                // "time,count,unit,event,..." ; "<not counted>" where a thread was idle for the interval.
                var f = line.Split(',');
                if (f.Length < 4 || !long.TryParse(f[1], out var n)) continue;
                var ev = f[3].Replace("syscalls:sys_enter_", "");
                if (counts.ContainsKey(ev)) counts[ev] += n;
            }
        return counts;
    }

    [Fact]
    public void TheRingThreadsServeNewConnectionsWithoutAccept4EpollWaitOrRead()
    {
        const int Connections = 200;
        using var t = Started(o => new IoUringAccept(o), Small(2));
        Assert.True(Eventually.Holds(() => t.Metrics.Workers.All(w => w.ThreadId != 0)), "the ring threads did not start");
        var tids = t.Metrics.Workers.Select(w => w.ThreadId).ToList();
        var counts = CountSyscalls(tids, () =>
        {
            for (int i = 0; i < Connections; i++)
            {
                using var c = new TestClient(t.LocalEndPoint);
                Assert.Equal(200, c.Get(keepAlive: false).Status);
            }
        }, out var perfSaid);
        var said = string.Join(", ", counts.Select(kv => $"{kv.Key} {kv.Value}")) + "\nperf:\n" + perfSaid;
        TestContext.Current.TestOutputHelper?.WriteLine(said);
        Assert.Equal(Connections, t.Metrics.RequestsServed);
        // The kernel accepted every connection and put its data in a provided buffer: no accept, no wait, no read.
        Assert.True(counts["accept4"] + counts["accept"] == 0, said);
        Assert.True(counts["epoll_wait"] + counts["epoll_pwait"] == 0, said);
        Assert.True(counts["recvfrom"] + counts["read"] == 0, said);
        // Each response is one send(2); each connection a few io_uring_enter (the accept's, the data's, the close's).
        Assert.True(counts["sendto"] >= Connections, said);
        Assert.InRange(counts["io_uring_enter"], 1, 3 * Connections + 20);
    }
}
