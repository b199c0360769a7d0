using Lab.Observe;
using Lab.Topologies;
using static Lab.Tests.Topologies.TopologyKit;

namespace Lab.Tests.Topologies;

/// <summary>What sets the io_uring model apart, counted by the kernel: its threads' system calls, read with perf.</summary>
public class IoUringAcceptTests
{
    static readonly string[] Calls = ["accept4", "accept", "epoll_wait", "epoll_pwait", "read", "recvfrom", "sendto", "io_uring_enter"];

    static IReadOnlyDictionary<string, long> ServeNewConnections(Topology t, int connections)
    {
        Assert.True(Eventually.Holds(() => t.Metrics.Workers.All(w => w.ThreadId != 0)), "the serving threads did not start");
        return SyscallCounter.Count(t.Metrics.Workers.Select(w => w.ThreadId), Calls, () =>
        {
            for (int i = 0; i < connections; i++)
            {
                using var c = new TestClient(t.LocalEndPoint);
                Assert.Equal(200, c.Get(keepAlive: false).Status);
            }
        });
    }

    [Fact]
    public void TheRingThreadsServeNewConnectionsWithoutAccept4EpollWaitOrRead()
    {
        const int Connections = 200;
        using var t = Started(o => new IoUringAccept(o), Small(2));
        var counts = ServeNewConnections(t, Connections);
        var said = string.Join(", ", counts.Select(kv => $"{kv.Key} {kv.Value}"));
        Assert.Equal(Connections, t.Metrics.RequestsServed);
        // The kernel accepted every connection and put its data in a provided buffer: no accept, no wait, no read.
        Assert.True(counts["accept4"] + counts["accept"] == 0, said);
        Assert.True(counts["epoll_wait"] + counts["epoll_pwait"] == 0, said);
        Assert.True(counts["recvfrom"] + counts["read"] == 0, said);
        // Each response is one send(2); each connection a few io_uring_enter (the accept's, the data's, the close's).
        Assert.True(counts["sendto"] >= Connections, said);
        Assert.InRange(counts["io_uring_enter"], 1, 3 * Connections + 20);
    }

    [Fact]
    public void TheCounterSeesAnEpollLoopsAcceptsSoTheZerosAboveMeanSomething()
    {
        const int Connections = 50;
        using var t = Started(o => new SingleThreadLoop(o));
        var counts = ServeNewConnections(t, Connections);
        var said = string.Join(", ", counts.Select(kv => $"{kv.Key} {kv.Value}"));
        Assert.True(counts["accept4"] >= Connections, said);
        Assert.True(counts["epoll_wait"] + counts["epoll_pwait"] >= Connections, said);
        Assert.True(counts["recvfrom"] >= Connections, said);
        Assert.Equal(0, counts["io_uring_enter"]);
    }

    [Fact]
    public void BadNamesAreRefusedWithWhatToGive()
    {
        var e = Assert.Throws<ArgumentException>(() => SyscallCounter.Count([Environment.CurrentManagedThreadId], ["accept4; rm"], () => { }));
        Assert.Contains("as the kernel spells them", e.Message);
        var none = Assert.Throws<ObserveException>(() => SyscallCounter.Count([1], ["no_such_call"], () => { }));
        Assert.Contains("no_such_call", none.Message);
        Assert.Throws<ArgumentException>(() => SyscallCounter.Count([], ["accept4"], () => { }));
    }
}
