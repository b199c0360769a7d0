using System.Diagnostics;
using Lab.Experiments;
using Lab.Load;
using Lab.Tests.Sockets;
using Lab.Tests.Topologies;
using Lab.Topologies;

namespace Lab.Tests.Experiments;

[Collection(nameof(TimingCollection))]
public class RequestDispatchChapterTests
{
    [Fact]
    public void SchedStatCountsThisThreadsCpuTime()
    {
        int tid = Lab.Interop.unistd.gettid();
        var before = SchedStat.Read(tid);
        Assert.NotNull(before);
        var clock = Stopwatch.StartNew();
        while (clock.ElapsedMilliseconds < 30) Thread.SpinWait(64);
        var after = SchedStat.Read(tid)!.Value.Since(before!.Value);
        Assert.True(after.OnCpu > TimeSpan.Zero, after.ToString());
        Assert.True(after.OnCpu <= clock.Elapsed + TimeSpan.FromMilliseconds(5), after.ToString());
        Assert.Null(SchedStat.Read(int.MaxValue));
    }

    [Fact]
    public void TheDispatcherWorksMoreAtFullLoadThanAtALowRate()
    {
        var points = DispatchRuns.Load(RequestMix.Hello(), 2, [200, null], 8, TimeSpan.FromSeconds(0.6));
        Assert.Equal(2, points.Count);
        var (low, full) = (points[0], points[1]);
        Assert.InRange(low.RequestsPerSecond, 150, 210);
        Assert.True(full.RequestsPerSecond > 2 * low.RequestsPerSecond, $"{low}\n{full}");
        Assert.True(full.DispatcherOnCpu > low.DispatcherOnCpu, $"{low}\n{full}");
        Assert.All(points, p => Assert.True(p.Errors == 0 && p.DispatcherUsPerRequest > 0 && p.MeanHandoffUs >= 0, p.ToString()));
    }

    [Fact]
    public void OneWorkerSleepingPerRequestIsBoundByItsSleep()
    {
        var points = DispatchRuns.Scaling([RequestMix.Sleep(5)], [1, 2], 4, TimeSpan.FromSeconds(0.6));
        Assert.Equal([1, 2], points.Select(p => p.Workers));
        Assert.True(points[0].RequestsPerSecond <= 200 * 1.05, points[0].ToString()); // 5 ms each: at most 200/s on one worker
        Assert.All(points, p => Assert.Equal("/sleep?ms=5", p.Work));
    }

    [Fact]
    public void BadRunsAreRefused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => DispatchRuns.Scaling([RequestMix.Hello()], [0], 4, TimeSpan.FromSeconds(1)));
        Assert.Throws<ArgumentOutOfRangeException>(() => DispatchRuns.Scaling([RequestMix.Hello()], [1], 4, TimeSpan.FromSeconds(30)));
        Assert.Throws<ArgumentException>(() => DispatchRuns.Scaling([], [1], 4, TimeSpan.FromSeconds(1)));
        Assert.Throws<ArgumentOutOfRangeException>(() => DispatchRuns.Load(RequestMix.Hello(), 1, [], 4, TimeSpan.FromSeconds(1)));
    }

    [Fact]
    public void RequestsStillQueuedWhenTheServerStopsDoNotCountAsDispatched()
    {
        // One worker, four clients each sending a 100 ms sleep: three wait in the dispatcher's queue; stop while they do.
        var t = new RequestDispatch(new TopologyOptions { Workers = 1 });
        t.Start();
        var clients = Enumerable.Range(0, 4).Select(_ => new TestClient(t.LocalEndPoint)).ToList();
        try
        {
            foreach (var c in clients) c.Send("GET /sleep?ms=100 HTTP/1.1\r\nHost: t\r\n\r\n");
            Assert.True(Eventually.Holds(() => t.Events.Count(TopologyEventKind.RequestStarted) >= 1, TimeSpan.FromSeconds(10)));
            t.Stop(TimeSpan.FromSeconds(5));
            var d = t.Metrics.Dispatch!;
            Assert.True(d.Dispatched <= 2, d.ToString());
            Assert.True(d.Queued <= d.Dispatched, d.ToString());
            Assert.True(d.MeanHandoff >= TimeSpan.Zero && d.MeanQueueWait <= d.Mean, d.ToString());
        }
        finally { foreach (var c in clients) c.Dispose(); }
    }
}
