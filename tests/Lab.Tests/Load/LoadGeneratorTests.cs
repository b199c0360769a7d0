using Lab.Observe;
using Lab.Load;
using Lab.Sockets;
using Lab.Tests.Topologies;
using Lab.Topologies;
using static Lab.Tests.Topologies.TopologyKit;

namespace Lab.Tests.Load;

public class LoadGeneratorTests
{
    static LoadOptions To(Topology t) => new() { Target = Lab.Sockets.Endpoints.Format(t.LocalEndPoint) };

    [Fact]
    public void ClosedLoopByCountAgreesWithTheServer()
    {
        using var t = Started(o => new DispatcherWorkers(o));
        var r = LoadGenerator.Run(To(t) with { Connections = 8, Requests = 5000 }, ct: TestContext.Current.CancellationToken);
        Assert.True(t.Stop(TimeSpan.FromSeconds(10)).Stopped);
        Assert.Equal(0, r.Errors.Total);
        Assert.Equal(5000, r.Completed);
        Assert.Equal(5000, r.Sent);
        Assert.Equal(8, r.ConnectionsOpened);
        Assert.Equal(0, r.Unfinished);
        Assert.Equal(r.Completed, t.Metrics.RequestsServed);
        Assert.Equal(8, t.Metrics.ConnectionsAccepted);
        Assert.Equal(5000, r.Latency.Count);
        Assert.True(r.Latency.P50 > TimeSpan.Zero && r.Latency.P50 <= r.Latency.P99 && r.Latency.P99 <= r.Latency.Max);
        Assert.Equal(5000, r.Throughput.Sum());
    }

    [Fact]
    public void ANewConnectionPerRequestOpensOneEach()
    {
        using var t = Started(o => new SingleThreadLoop(o));
        var r = LoadGenerator.Run(To(t) with { Connections = 4, Requests = 400, KeepAlive = false }, ct: TestContext.Current.CancellationToken);
        Assert.True(t.Stop(TimeSpan.FromSeconds(10)).Stopped);
        Assert.Equal(0, r.Errors.Total);
        Assert.Equal(400, r.Completed);
        Assert.Equal(400, r.ConnectionsOpened);
        Assert.Equal(400, t.Metrics.ConnectionsAccepted);
        Assert.Equal(400, t.Metrics.RequestsServed);
        Assert.Equal(400, t.Events.Count(TopologyEventKind.Closed)); // the server closed each, after Connection: close
    }

    [Fact]
    public void OpenLoopSendsAboutRateTimesDuration()
    {
        using var t = Started(o => new DispatcherWorkers(o));
        var r = LoadGenerator.Run(To(t) with { Connections = 8, Rate = 400, Duration = TimeSpan.FromSeconds(2) }, ct: TestContext.Current.CancellationToken);
        Assert.True(r.OpenLoop);
        Assert.InRange(r.Sent, 700, 820);
        Assert.Equal(0, r.Errors.Total);
        Assert.InRange(r.Completed, r.Sent - 8, r.Sent);
        Assert.True(r.Missed <= 10, r.ToString());
    }

    [Fact]
    public void OpenLoopLatencyIncludesTheStallAConnectionWaitedThrough()
    {
        // Requests are due 10 ms apart; a /sleep?ms=100 (3% of them) stalls the single-thread server, and the
        // requests due meanwhile wait. Measured from when they were due, the tail shows the stall.
        using var t = Started(o => new SingleThreadLoop(o));
        var r = LoadGenerator.Run(To(t) with
        {
            Connections = 4, Rate = 100, Duration = TimeSpan.FromSeconds(2),
            Mix = [RequestMix.Hello(97), RequestMix.Sleep(100, 3)],
        }, ct: TestContext.Current.CancellationToken);
        Assert.Equal(0, r.Errors.Total);
        Assert.True(r.Sent >= 150, r.ToString());
        Assert.True(r.Latency.Max >= TimeSpan.FromMilliseconds(80), r.ToString());
        Assert.True(r.Latency.P99 >= TimeSpan.FromMilliseconds(50), r.ToString());
        Assert.True(r.Latency.P50 < TimeSpan.FromMilliseconds(50), r.ToString());
    }

    [Fact]
    public void RefusedConnectionsAreErrors()
    {
        int port;
        using (var l = Listener.Open("127.0.0.1:0")) port = l.Port;
        var r = LoadGenerator.Run(new LoadOptions { Target = $"127.0.0.1:{port}", Connections = 2, Requests = 20 }, ct: TestContext.Current.CancellationToken);
        Assert.Equal(20, r.Errors.Refused);
        Assert.Equal(20, r.Errors.Total);
        Assert.Equal(0, r.Completed);
        Assert.Equal(0, r.Sent);
    }

    [Fact]
    public void NoAnswerIsATimeoutAndBadAnswersAreCounted()
    {
        using var silent = Listener.Open("127.0.0.1:0", backlog: 8); // never accepts: the handshake completes, no reply ever comes
        var r = LoadGenerator.Run(new LoadOptions { Target = Lab.Sockets.Endpoints.Format(silent.LocalEndPoint), Connections = 2, Requests = 2, RequestTimeout = TimeSpan.FromMilliseconds(300) }, ct: TestContext.Current.CancellationToken);
        Assert.Equal(2, r.Errors.Timeout);
        Assert.Equal(2, r.Sent);

        using var t = Started(o => new SingleThreadLoop(o));
        var bad = LoadGenerator.Run(To(t) with { Connections = 1, Requests = 3, Mix = [new RequestMix("/work?ms=nope", 1)] }, ct: TestContext.Current.CancellationToken);
        Assert.Equal(3, bad.Errors.BadResponse);
        Assert.Contains("400", bad.FirstError);
    }

    [Fact]
    public void OnlyLabAddressesAreTargets()
    {
        var e = Assert.Throws<ArgumentException>(() => LoadGenerator.Run(new LoadOptions { Target = "8.8.8.8:80", Requests = 1 }, ct: TestContext.Current.CancellationToken));
        Assert.Contains("8.8.8.8", e.Message);
        Assert.Contains("loopback", e.Message);
        Assert.Throws<ArgumentException>(() => LoadGenerator.Run(new LoadOptions { Target = "http://example.com/", Requests = 1 }, ct: TestContext.Current.CancellationToken));
        Assert.Throws<ArgumentException>(() => LoadGenerator.Run(new LoadOptions { Target = "https://127.0.0.1:1/", Requests = 1 }, ct: TestContext.Current.CancellationToken));
    }

    [Fact]
    public void OptionsAreBounded()
    {
        var o = new LoadOptions { Target = "127.0.0.1:1" };
        Assert.Contains("Connections = 0", Assert.Throws<ArgumentOutOfRangeException>(() => LoadGenerator.Run(o with { Connections = 0 }, ct: TestContext.Current.CancellationToken)).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => LoadGenerator.Run(o with { Duration = TimeSpan.FromMinutes(11) }, ct: TestContext.Current.CancellationToken));
        Assert.Throws<ArgumentOutOfRangeException>(() => LoadGenerator.Run(o with { Requests = 10_000_001 }, ct: TestContext.Current.CancellationToken));
        Assert.Throws<ArgumentOutOfRangeException>(() => LoadGenerator.Run(o with { Rate = -5 }, ct: TestContext.Current.CancellationToken));
        Assert.Throws<ArgumentException>(() => LoadGenerator.Run(o with { Mix = [new RequestMix("no-slash", 1)] }, ct: TestContext.Current.CancellationToken));
        Assert.Throws<ArgumentException>(() => LoadGenerator.Run(new LoadOptions(), ct: TestContext.Current.CancellationToken));
    }

    [Fact]
    public void ProgressArrivesAboutOnceASecondAndUrlsWork()
    {
        using var t = Started(o => new SingleThreadLoop(o));
        var reports = new List<LoadProgress>();
        var r = LoadGenerator.Run(new LoadOptions { Target = t.Url + "work?ms=1", Connections = 2, Duration = TimeSpan.FromSeconds(2.5) },
            new SyncProgress(reports.Add), TestContext.Current.CancellationToken);
        Assert.InRange(reports.Count, 1, 3);
        Assert.True(r.Completed > 100, r.ToString());
        Assert.InRange(r.Throughput.Count, 2, 3);
        Assert.Equal(0, r.Errors.Total);
    }

    [Fact]
    public void CancellationStopsARun()
    {
        using var t = Started(o => new SingleThreadLoop(o));
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));
        var clock = System.Diagnostics.Stopwatch.StartNew();
        Assert.ThrowsAny<OperationCanceledException>(() => LoadGenerator.Run(To(t) with { Duration = TimeSpan.FromSeconds(30) }, null, cts.Token));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10));
    }

    [Fact]
    public void ExperimentRunsATopologyAndDrawsItsCharts()
    {
        var run = TopologyRunner.Run(new ReusePortShards(Small(2)), new LoadOptions { Connections = 8, Requests = 2000 }, ct: TestContext.Current.CancellationToken);
        Assert.Equal(2000, run.Load.Completed);
        Assert.Equal(2000, run.Server.RequestsServed);
        Assert.True(run.Stop!.Stopped);
        Assert.NotEmpty(run.Queue);
        Assert.All(run.Queue, q => Assert.InRange(q.Listener, 0, 1));
        Assert.NotNull(run.WorkerBars());
        Assert.NotNull(run.BusyBars());
        Assert.NotNull(run.LatencyPercentiles());
        Assert.NotNull(run.QueueDepth());
        Assert.NotNull(run.Load.ThroughputChart());
        Assert.Contains("ReusePortShards", run.ToString());
    }

    [Fact]
    public void ExperimentSamplesAnOverflowingAcceptQueue()
    {
        // A single thread busy in /sleep accepts nothing; with backlog 2 the queue holds 3 (backlog + 1) and the
        // kernel drops the rest of the handshakes: the sampler sees Length > Limit and records the overflow.
        using var t = new SingleThreadLoop(new TopologyOptions { Backlog = 2 });
        var run = TopologyRunner.Run(t, new LoadOptions
        {
            Connections = 12, KeepAlive = false, Duration = TimeSpan.FromSeconds(1.5), Mix = [RequestMix.Sleep(200)],
        }, TimeSpan.FromMilliseconds(5), ct: TestContext.Current.CancellationToken);
        Assert.Contains(run.Queue, q => q.Length >= 3 && q.Length <= ListenQueues.Racing(2) && q.Limit == 2);
        Assert.True(t.Events.Count(TopologyEventKind.AcceptQueueOverflow) >= 1);
        Assert.True(run.Stop!.Stopped);
        Assert.NotNull(run.QueueDepth());
        Assert.True(run.Load.Completed >= 3, run.ToString());
    }

    sealed class SyncProgress(Action<LoadProgress> report) : IProgress<LoadProgress>
    {
        public void Report(LoadProgress value) { lock (this) report(value); }
    }
}

public class LatencyHistogramTests
{
    [Fact]
    public void PercentilesAreWithinATenthOfAPercent()
    {
        var h = new LatencyHistogram();
        for (int v = 1; v <= 100_000; v++) h.Record(v);
        Assert.Equal(100_000, h.Count);
        Assert.Equal(TimeSpan.FromMicroseconds(1), h.Min);
        Assert.Equal(TimeSpan.FromMicroseconds(100_000), h.Max);
        Assert.Equal(50_000.5, h.Mean.TotalMicroseconds, 0.01);
        foreach (var p in new[] { 50.0, 90, 99, 99.9 })
            Assert.Equal(p * 1000, h.Percentile(p).TotalMicroseconds, p * 1000 * 0.001 + 1);
        Assert.Equal(100_000, h.Percentile(100).TotalMicroseconds);
        for (int v = 0; v < 2048; v++) { var e = new LatencyHistogram(); e.Record(v); Assert.Equal(v, e.P50.TotalMicroseconds); } // exact below 2048 µs
    }

    [Fact]
    public void MergingAddsAndCurvesClimb()
    {
        var a = new LatencyHistogram(); var b = new LatencyHistogram();
        for (int i = 0; i < 990; i++) a.Record(100);
        for (int i = 0; i < 10; i++) b.Record(200_000);
        a.Merge(b);
        Assert.Equal(1000, a.Count);
        Assert.Equal(100, a.P50.TotalMicroseconds);
        Assert.Equal(100, a.Percentile(99).TotalMicroseconds);
        Assert.InRange(a.P999.TotalMicroseconds, 199_800, 200_000);
        var curve = a.Curve();
        Assert.True(curve.Zip(curve.Skip(1)).All(x => x.First.Latency <= x.Second.Latency && x.First.Percentile < x.Second.Percentile));
        Assert.Equal(0, new LatencyHistogram().P99.Ticks);
        Assert.Throws<ArgumentOutOfRangeException>(() => a.Percentile(101));
    }
}
