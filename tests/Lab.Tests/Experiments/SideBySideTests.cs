using Lab.Observe;
using Lab.Experiments;
using Lab.Load;
using Lab.Peers;
using Lab.Http;
using Lab.Topologies;

namespace Lab.Tests.Experiments;

public class SideBySideTests
{
    [Fact]
    public void TheWorkloadsAreTheIssuesThree()
    {
        var w = new SideBySideOptions { SlowMs = 40 }.Workloads();
        Assert.Equal(["uniform fast", "1% slow", "new connection each"], w.Select(x => x.Name));
        Assert.Equal(["/"], w[0].Mix.Select(m => m.Path));
        Assert.True(w[0].KeepAlive && w[1].KeepAlive && !w[2].KeepAlive);
        Assert.Equal(["/", "/sleep?ms=40"], w[1].Mix.Select(m => m.Path));
        Assert.Equal(0.01, w[1].Mix[1].Weight / w[1].Mix.Sum(m => m.Weight), 6);
        Assert.Equal("99% /, 1% /sleep?ms=40", w[1].MixText);
        Assert.Equal("/work?ms=40", new SideBySideOptions { SlowMs = 40, SlowRoute = Route.Work }.Workloads()[1].Mix[1].Path);
        Assert.True(w[0].NginxCanServe && !w[1].NginxCanServe && w[2].NginxCanServe);
        Assert.Equal(5, SideBySide.Models.Count);
        Assert.Contains(SideBySide.Models, m => m.Name == "SharedSocketAcceptors/EpollExclusive");
    }

    [Theory]
    [InlineData("Workers")]
    [InlineData("Rate")]
    [InlineData("LatencyRun")]
    [InlineData("SlowMs")]
    public void BadOptionsNameTheValue(string name)
    {
        var o = name switch
        {
            "Workers" => new SideBySideOptions { Workers = 0 },
            "Rate" => new SideBySideOptions { Rate = -1 },
            "LatencyRun" => new SideBySideOptions { LatencyRun = TimeSpan.FromMinutes(5) },
            _ => new SideBySideOptions { SlowMs = 0 },
        };
        var e = Assert.ThrowsAny<ArgumentException>(() => SideBySide.Run(o, ct: TestContext.Current.CancellationToken));
        Assert.Contains(name == "SlowMs" ? "slowMs" : name, e.Message);
    }

    [Fact]
    public void LatencyByPathKeepsAMixsFastRequestsApartFromItsSlowOnes()
    {
        using var t = new SingleThreadLoop();
        var run = TopologyRunner.Run(t, new LoadOptions { Connections = 1, Requests = 40, Mix = [RequestMix.Hello(1), RequestMix.Work(20, 1)] }, ct: TestContext.Current.CancellationToken);
        var r = run.Load;
        Assert.Equal(0, r.Errors.Total);
        Assert.Equal(["/", "/work?ms=20"], r.LatencyByPath.Keys.Order());
        Assert.Equal(r.Latency.Count, r.LatencyByPath.Values.Sum(h => h.Count));
        Assert.True(r.LatencyByPath["/work?ms=20"].Count > 0 && r.LatencyByPath["/"].Count > 0);
        // /work spins for 20 ms of wall-clock time on the server before it answers.
        Assert.True(r.LatencyByPath["/work?ms=20"].Min >= TimeSpan.FromMilliseconds(20), r.LatencyByPath["/work?ms=20"].ToString());
        Assert.Equal(r.Latency.Max, r.LatencyByPath.Values.Max(h => h.Max));
    }

    static SideRun Row(string model, string workload, double rps, double p99) =>
        new(model, workload, rps, 0.5, p99, p99 / 2, p99, null, "requests", [], 0, 10, 100, 0);

    [Fact]
    public void RunsOfSeparateWorkloadsJoinIntoOneComparison()
    {
        var fast = SideBySide.From(new SideBySideOptions { Only = ["uniform fast"] },
            [Row("A", "uniform fast", 1000, 2.0), Row(SideBySide.NginxName, "uniform fast", 2000, 1.0)]);
        var slow = SideBySide.From(new SideBySideOptions { Only = ["1% slow"] }, [Row("A", "1% slow", 300, 30)], nginxNote: "nginx did not start");
        Assert.Equal(["uniform fast"], fast.WorkloadNames);
        var both = fast.And(slow);
        Assert.Equal(["uniform fast", "1% slow"], both.WorkloadNames);   // the chapter's order, whatever order they were joined in
        Assert.Equal(["uniform fast", "1% slow"], slow.And(fast).WorkloadNames);
        Assert.Equal(3, both.Runs.Count);
        Assert.Equal(30, both["A", "1% slow"].FastP99Ms);
        Assert.Equal("nginx did not start", both.NginxNote);
        Assert.Throws<KeyNotFoundException>(() => both["A", "new connection each"]);
    }

    [Fact]
    public void AnUnknownWorkloadIsRefusedWithTheNames()
    {
        var e = Assert.Throws<ArgumentException>(() => SideBySide.Run(new SideBySideOptions { Only = ["uniform"] }, ct: TestContext.Current.CancellationToken));
        Assert.Contains("\"uniform fast\"", e.Message);
        Assert.Contains("'uniform'", e.Message);
    }

    [Fact]
    public void AShortPassMeasuresEveryModelUnderEveryWorkload()
    {
        var o = new SideBySideOptions
        {
            Rate = 200, LatencyRun = TimeSpan.FromMilliseconds(250), ThroughputRun = TimeSpan.FromMilliseconds(200), SlowMs = 5,
            Nginx = Nginx.Installed,
        };
        var updates = new List<object>();
        var side = SideBySide.Run(o, updates.Add, TestContext.Current.CancellationToken);
        int nginxRows = Nginx.Installed && side.NginxNote is null ? 2 : 0;
        Assert.Equal(15 + nginxRows, side.Runs.Count);
        Assert.Equal(side.Runs.Count, updates.Count);
        Assert.Equal(side.Runs.Count, Assert.IsAssignableFrom<IReadOnlyList<SideRun>>(updates[^1]).Count);
        Assert.DoesNotContain(side.Runs, r => r.Model == SideBySide.NginxName && r.Workload == "1% slow");
        foreach (var r in side.Runs)
        {
            Assert.True(r.Errors == 0, $"{r.Model} / {r.Workload}: {r.Errors} errors");
            Assert.True(r.PeakAcceptQueue <= ListenQueues.Racing(o.Backlog), r.ToString()); // backlog + 1, one more per CPU when handshakes race
        }
        foreach (var (model, _) in SideBySide.Models)
        {
            var (keep, _) = side.Detail(model, "uniform fast");
            // Kept-alive connections are accepted once: never more than the client opened.
            Assert.True(keep!.Server.ConnectionsAccepted <= o.LatencyConnections, $"{model}: {keep.Server.ConnectionsAccepted} accepted");
            var (each, _) = side.Detail(model, "new connection each");
            // One request per connection: every request served came through its own accept.
            Assert.True(each!.Server.RequestsServed <= each.Server.ConnectionsAccepted, $"{model}: {each.Server.RequestsServed} requests, {each.Server.ConnectionsAccepted} accepted");
            if (side[model, "uniform fast"].BusiestShare is { } share) Assert.InRange(share, 100.0 / o.Workers - 0.01, 100);
        }
        // No speed is asserted (a busy machine can stall a 200 ms run whole), only that the runs carried requests at all.
        Assert.True(side.Runs.Sum(r => r.Completed) > 0);
        // memcached's round-robin: connections per worker differ by at most one.
        var served = side.Detail(nameof(DispatcherWorkers), "new connection each").Latency!.Server.Workers
            .Where(w => w.Role == WorkerRole.Worker).Select(w => w.ConnectionsServed).ToList();
        Assert.True(served.Max() - served.Min() <= 1, string.Join(", ", served));
        foreach (var chart in new[] { side.ThroughputChart(), side.LatencyChart(), side.BalanceChart(), side.QueueChart() })
            Assert.Contains("plotly", Lab.Display.ChartHtml.Fragment(chart), StringComparison.OrdinalIgnoreCase);
    }
}
