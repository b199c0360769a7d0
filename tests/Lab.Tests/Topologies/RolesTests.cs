using Lab.Load;
using Lab.Observe;
using Lab.Topologies;

namespace Lab.Tests.Topologies;

public class RolesTests
{
    static LoadOptions NewConnections(int requests) => new() { Connections = 4, Requests = requests, KeepAlive = false };

    /// <summary>What chapter 06's cells do: start the server, load it, take the table while its threads exist, stop it.</summary>
    static (TopologyRun Run, IReadOnlyList<ThreadCalls> Calls, IReadOnlyList<WorkerMetrics> Declared, int ListenerTid) Run(Topology t, LoadOptions load)
    {
        using (t)
        {
            t.Start();
            var run = TopologyRunner.Run(t, load, ct: TestContext.Current.CancellationToken);
            return (run, Roles.Calls(t), t.Metrics.Workers, t is RoleSplit rs ? rs.ListenerThreadId : 0);
        }
    }

    static long OffRole((TopologyRun, IReadOnlyList<ThreadCalls> Calls, IReadOnlyList<WorkerMetrics> Declared, int) r, Func<ThreadCalls, long> count, WorkerRole role) =>
        r.Calls.Where(c => !r.Declared.Any(w => w.ThreadId == c.Tid && w.Role == role)).Sum(count);

    [Fact]
    public void OneListenerThreeAcceptorsFiveReadersEachCallMadeOnlyByItsRole()
    {
        var run = Run(new RoleSplit(3, 5), NewConnections(300));
        Assert.Equal(0, run.Run.Load.Errors.Total);
        Assert.Equal(300, run.Run.Load.Completed);
        Assert.Equal(1, run.Calls.Sum(t => t.Listen));
        var listener = Assert.Single(run.Calls, t => t.Listen > 0);
        Assert.Equal(run.ListenerTid, listener.Tid);
        Assert.Equal((0L, 0L), (listener.Accept, listener.Read));
        Assert.Equal(run.Run.Load.ConnectionsOpened, run.Calls.Sum(t => t.Accept));
        Assert.Equal(run.Run.Load.Completed, run.Calls.Sum(t => t.Requests));
        Assert.True(run.Calls.Sum(t => t.Read) >= 300, $"{run.Calls.Sum(t => t.Read)} reads for 300 requests");
        Assert.Equal(0, OffRole(run, t => t.Accept, WorkerRole.Acceptor));
        Assert.Equal(0, OffRole(run, t => t.Read, WorkerRole.Worker));
        // Round-robin hand-off: 300 connections over 5 readers, 60 each.
        Assert.All(run.Declared.Where(w => w.Role == WorkerRole.Worker), w => Assert.Equal(60, w.ConnectionsServed));
        Assert.Equal(3, run.Declared.Count(w => w.Role == WorkerRole.Acceptor));
    }

    [Fact]
    public void OneThreadListensAcceptsAndReads()
    {
        var run = Run(RoleSplit.OneThread(), NewConnections(100));
        var row = Assert.Single(run.Calls);
        Assert.Equal(run.ListenerTid, row.Tid);
        Assert.Equal("listener + acceptor + reader", row.Role);
        Assert.Equal((1L, 100L, 100L), (row.Listen, row.Accept, row.Requests));
        Assert.Equal("lab-topo listen", row.Thread);
    }

    [Fact]
    public void AListenerWithoutAcceptorsAcceptsAndHandsEveryConnectionToAReader()
    {
        var run = Run(new RoleSplit(0, 3), NewConnections(90));
        var listener = run.Calls.Single(t => t.Listen > 0);
        Assert.Equal((90L, 90L, 0L), (listener.Accept, listener.Handoffs, listener.Read));
        Assert.Equal(0, OffRole(run, t => t.Read, WorkerRole.Worker));
        Assert.Equal(3, run.Calls.Count(t => t.Read > 0));
    }

    [Fact]
    public void SingleThreadLoopListensOnTheCallersThreadAndServesOnItsLoop()
    {
        var run = Run(new SingleThreadLoop(), NewConnections(50));
        Assert.Equal(2, run.Calls.Count);
        var loop = run.Calls.Single(t => t.Accept > 0);
        Assert.Equal((0L, 50L, 50L), (loop.Listen, loop.Accept, loop.Requests));
        Assert.Equal(0, run.Calls.Single(t => t.Listen > 0).Accept);
    }

    [Fact]
    public void AcceptorsSleepInAcceptWhileIdle()
    {
        using var t = new RoleSplit(2, 1);
        t.Start();
        Assert.True(Eventually.Holds(() => t.Metrics.Workers.All(w => w.ThreadId != 0)), "every thread ran");
        var workers = t.Metrics.Workers;
        Assert.Equal(3, workers.Count); // rd0, acc0, acc1 (and the listener thread, in a futex)
        foreach (var w in workers.Where(w => w.Role == WorkerRole.Acceptor)) ThreadWaits.InAccept(w.ThreadId);
        var reader = ThreadWaits.InEpollWait(workers.Single(w => w.Role == WorkerRole.Worker).ThreadId);
        Assert.False(reader.InAccept, reader.ToString());
        Assert.False(ThreadLook.Of(t.ListenerThreadId).InAccept);
        var report = t.Stop(TimeSpan.FromSeconds(10));
        Assert.True(report.Stopped, report.ToString());
        Assert.Empty(t.Failures);
        Assert.All(t.Threads, th => Assert.False(th.IsAlive));
        Assert.True(Eventually.Holds(() => ThreadLook.TryOf(workers[0].ThreadId) is null), "an ended thread leaves /proc/self/task");
    }

    [Fact]
    public void ServesKeepAliveRequestsAndStopsCleanly()
    {
        using var t = TopologyKit.Started(_ => new RoleSplit(2, 3));
        TopologyKit.Parallel(3, _ =>
        {
            using var c = new TestClient(t.LocalEndPoint);
            for (int i = 0; i < 100; i++) Assert.Equal(200, c.Get().Status);
        });
        var report = t.Stop(TimeSpan.FromSeconds(10));
        Assert.True(report.Stopped, report.ToString());
        Assert.Empty(t.Failures);
        Assert.Equal(300, t.Metrics.RequestsServed);
        Assert.Equal(3, t.Metrics.ConnectionsAccepted);
    }

    [Fact]
    public void ATableFromAnOverwrittenRingIsRefused()
    {
        using var t = new RoleSplit(1, 1, new TopologyOptions { EventCapacity = 1024 });
        t.Start();
        TopologyRunner.Run(t, NewConnections(400), ct: TestContext.Current.CancellationToken);
        var e = Assert.Throws<InvalidOperationException>(() => Roles.Calls(t));
        Assert.Contains("EventCapacity", e.Message);
    }

    [Theory]
    [InlineData(-1, 1)]
    [InlineData(65, 1)]
    [InlineData(1, 65)]
    [InlineData(2, 0)]
    public void BadRoleCountsAreRefusedNamingTheFix(int acceptors, int readers)
    {
        var e = Assert.ThrowsAny<ArgumentException>(() => new RoleSplit(acceptors, readers));
        Assert.Contains(acceptors is < 0 or > 64 ? "acceptors" : "readers", e.Message);
    }
}
