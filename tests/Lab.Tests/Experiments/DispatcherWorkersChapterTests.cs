using Lab.Experiments;
using Lab.Load;
using Lab.Topologies;

namespace Lab.Tests.Experiments;

[Collection(nameof(TimingCollection))]
public class DispatcherWorkersChapterTests
{
    // Chapter 08's plan: round robin puts both heavy clients (places 0 and 2) and one light client on w0.
    static readonly PlannedConnection[] HeavyThenLight =
        [PlannedConnection.Heavy(15, 16), PlannedConnection.Light(31), PlannedConnection.Heavy(15, 18.4), PlannedConnection.Light(37), PlannedConnection.Light(41), PlannedConnection.Light(43)];

    [Fact]
    public void RoundRobinPlacesPlannedClientsByTheirOrder()
    {
        var run = PlannedRun.Run(new DispatcherWorkers(new TopologyOptions { Workers = 2 }), HeavyThenLight, TimeSpan.FromSeconds(1.5));
        Assert.Equal(["w0", "w1", "w0", "w1", "w0", "w1"], run.Connections.Select(c => c.Thread));
        Assert.All(run.Workers, w => Assert.Equal(3, w.Connections));
        Assert.All(run.Connections, c => Assert.True(c.Completed > 0 && c.Errors == 0, c.ToString()));
    }

    [Fact]
    public void TheHeavyConnectionsWorkerRunsEveryHeavyRequestAndIsTheBusiest()
    {
        var run = PlannedRun.Run(new DispatcherWorkers(new TopologyOptions { Workers = 2 }), HeavyThenLight, TimeSpan.FromSeconds(1.5));
        var w0 = run.Workers.Single(w => w.Thread == "w0");
        var w1 = run.Workers.Single(w => w.Thread == "w1");
        Assert.True(w0.HeavyRequests >= 20, run.ToString());
        Assert.Equal(0, w1.HeavyRequests);
        // 34 heavy requests a second of 15 ms each: w0 spins about half of the run; w1 answers light requests only.
        Assert.True(w0.BusyMs >= 2 * w1.BusyMs, run.ToString());
        Assert.True(run.BusyRatio >= 2, run.ToString());
    }

    [Fact]
    public void RequestDispatchReadsEveryConnectionOnTheDispatcherAndSpreadsHeavyRequests()
    {
        var run = PlannedRun.Run(new RequestDispatch(new TopologyOptions { Workers = 2 }), HeavyThenLight, TimeSpan.FromSeconds(1.5));
        Assert.All(run.Connections, c => Assert.Equal("disp", c.Thread));
        Assert.All(run.Workers, w => Assert.Equal(0, w.Connections));
        Assert.Equal(6, run.Threads.Single(t => t.Role == WorkerRole.Dispatcher).Connections);
        // The two heavy clients' 15 ms requests overlap most of the time; the second of an overlapping pair goes to the other worker.
        Assert.All(run.Workers, w => Assert.True(w.HeavyRequests >= 1, run.ToString()));
        // A worker counts a request before its response is written; a client that stopped at the end of the run may
        // not have read the last one (each connection has at most one request out).
        long completed = run.Connections.Sum(c => c.Completed);
        Assert.InRange(run.Workers.Sum(w => w.Requests), completed, completed + HeavyThenLight.Length);
    }

    [Fact]
    public void ARunStopsTheServerItStartedAndLeavesARunningOneRunning()
    {
        var fresh = new DispatcherWorkers();
        PlannedRun.Run(fresh, [PlannedConnection.Light(50)], TimeSpan.FromSeconds(0.5));
        Assert.False(fresh.Running);
        Assert.All(fresh.Threads, t => Assert.False(t.IsAlive));

        using var running = new RequestDispatch();
        running.Start();
        var run = PlannedRun.Run(running, [PlannedConnection.Light(50)], TimeSpan.FromSeconds(0.5));
        Assert.True(running.Running);
        Assert.True(run.Connections[0].Completed > 0);
    }

    [Fact]
    public void BadPlansAreRefusedWithTheValueNamed()
    {
        using var t = new DispatcherWorkers();
        Assert.Throws<ArgumentOutOfRangeException>(() => PlannedRun.Run(t, [], TimeSpan.FromSeconds(1)));
        Assert.Throws<ArgumentOutOfRangeException>(() => PlannedRun.Run(t, [PlannedConnection.Light(10)], TimeSpan.FromSeconds(60)));
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => PlannedRun.Run(t, [new PlannedConnection("odd", RequestMix.Hello(), 0)], TimeSpan.FromSeconds(1)));
        Assert.Contains("odd", e.Message);
        Assert.False(t.Running);
    }
}
