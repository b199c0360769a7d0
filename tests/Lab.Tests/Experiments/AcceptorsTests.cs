using Lab.Experiments;
using Lab.Topologies;

namespace Lab.Tests.Experiments;

public class AcceptorsTests(ITestOutputHelper output)
{
    [Fact]
    public void PlainEpollPerThreadWakesThreadsForNothingAndExclusiveFarFewer()
    {
        var c = AcceptorComparison.Run(threads: 4, rate: 50, duration: TimeSpan.FromSeconds(1.5),
            variants: [AcceptorVariant.EpollPerThread, AcceptorVariant.EpollExclusive, AcceptorVariant.AcceptMutex]);
        foreach (var r in c.Rows) output.WriteLine(r.ToString());
        var herd = c[AcceptorVariant.EpollPerThread];
        var exclusive = c[AcceptorVariant.EpollExclusive];
        var mutex = c[AcceptorVariant.AcceptMutex];
        Assert.All(c.Rows, r => Assert.True(r.Connections >= 40 && r.Errors == 0, r.ToString()));
        // Each connection wakes the three idle threads that do not get it: close to 3 per connection here.
        Assert.True(herd.WastedPerConnection >= 1, herd.ToString());
        Assert.True(exclusive.Wasted * 4 <= herd.Wasted, $"EPOLLEXCLUSIVE {exclusive} vs plain {herd}");
        Assert.True(mutex.Wasted * 4 <= herd.Wasted, $"accept mutex {mutex} vs plain {herd}");
    }

    [Fact]
    public void UnderLightLoadEpollExclusiveGivesTheFirstRegisteredThreadMostConnectionsAndBlockingAcceptTakesTurns()
    {
        // A low rate, so that even on a busy machine each thread is back in its wait before the next connection.
        var c = AcceptorComparison.Run(threads: 4, rate: 30, duration: TimeSpan.FromSeconds(2),
            variants: [AcceptorVariant.EpollExclusive, AcceptorVariant.BlockingAccept]);
        foreach (var r in c.Rows) output.WriteLine(r.ToString() + " " + string.Join(",", r.PerThread));
        var exclusive = c[AcceptorVariant.EpollExclusive];
        var blocking = c[AcceptorVariant.BlockingAccept];
        // EPOLLEXCLUSIVE: the socket's wait queue holds the epolls in the order they were added; a wake-up stops at the
        // first one with a thread waiting, so the first-registered thread, t0, takes nearly every connection.
        string Spread(AcceptorRow r) => $"{r.Variant}: {string.Join(" / ", r.PerThread)}";
        Assert.True(exclusive.TopShare >= 0.5 && exclusive.BusiestThread == 0, Spread(exclusive)); // twice the even share, on thread 0
        // Blocking accept4: waiters queue at the tail and the head is woken, first-in first-out: a turn each.
        Assert.True(blocking.TopShare <= 0.45, Spread(blocking));
    }
}
