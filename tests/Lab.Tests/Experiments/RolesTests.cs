using Lab.Experiments;
using Lab.Load;
using Lab.Tests.Topologies;
using Lab.Topologies;

namespace Lab.Tests.Experiments;

public class RolesTests
{
    static LoadOptions NewConnections(int requests) => new() { Connections = 4, Requests = requests, KeepAlive = false };

    [Fact]
    public void OneListenerThreeAcceptorsFiveReadersEachCallMadeOnlyByItsRole()
    {
        var run = Roles.Run(new RoleSplit(3, 5), NewConnections(300));
        Assert.Equal(0, run.Run.Load.Errors.Total);
        Assert.Equal(300, run.ClientRequests);
        Assert.Equal(1, run.Listens);
        var listener = Assert.Single(run.Threads, t => t.Listen > 0);
        Assert.Equal(run.ListenerThreadId, listener.Tid);
        Assert.Equal((0L, 0L), (listener.Accept, listener.Read));
        Assert.Equal(run.ClientConnections, run.Accepts);
        Assert.Equal(run.ClientRequests, run.Answered);
        Assert.True(run.Reads >= run.ClientRequests, $"{run.Reads} reads for {run.ClientRequests} requests");
        Assert.Equal(0, run.AcceptsOffRole(WorkerRole.Acceptor));
        Assert.Equal(0, run.ReadsOffRole(WorkerRole.Worker));
        // Round-robin hand-off: 300 connections over 5 readers, 60 each.
        Assert.All(run.Declared.Where(w => w.Role == WorkerRole.Worker), w => Assert.Equal(60, w.ConnectionsServed));
        Assert.Equal(3, run.Declared.Count(w => w.Role == WorkerRole.Acceptor));
    }

    [Fact]
    public void OneThreadListensAcceptsAndReads()
    {
        var run = Roles.Run(RoleSplit.OneThread(), NewConnections(100));
        var row = Assert.Single(run.Threads);
        Assert.Equal(run.ListenerThreadId, row.Tid);
        Assert.Equal("listener + acceptor + reader", row.Role);
        Assert.Equal((1L, 100L, 100L), (row.Listen, row.Accept, row.Requests));
        Assert.Equal("lab-topo listen", row.Thread);
    }

    [Fact]
    public void AListenerWithoutAcceptorsAcceptsAndHandsEveryConnectionToAReader()
    {
        var run = Roles.Run(new RoleSplit(0, 3), NewConnections(90));
        var listener = run.Threads.Single(t => t.Listen > 0);
        Assert.Equal((90L, 90L, 0L), (listener.Accept, listener.Handoffs, listener.Read));
        Assert.Equal(0, run.ReadsOffRole(WorkerRole.Worker));
        Assert.Equal(3, run.ThreadsMaking.Read);
    }

    [Fact]
    public void SingleThreadLoopListensOnTheCallersThreadAndServesOnItsLoop()
    {
        var run = Roles.Run(new SingleThreadLoop(), NewConnections(50));
        Assert.Equal(2, run.Threads.Count);
        var loop = run.Threads.Single(t => t.Accept > 0);
        Assert.Equal((0L, 50L, 50L), (loop.Listen, loop.Accept, loop.Requests));
        Assert.Equal(0, run.Threads.Single(t => t.Listen > 0).Accept);
    }

    [Fact]
    public void AcceptorsSleepInAcceptWhileIdle()
    {
        using var t = new RoleSplit(2, 1);
        t.Start();
        var waits = Roles.Waits(t, TimeSpan.FromSeconds(5));
        Assert.Equal(4, waits.Count); // listen, rd0, acc0, acc1
        Assert.All(waits.Where(w => w.Thread.Contains("acc")), w => Assert.True(w.InAccept, w.ToString()));
        Assert.All(waits.Where(w => !w.Thread.Contains("acc")), w => Assert.False(w.InAccept, w.ToString()));
        var report = t.Stop(TimeSpan.FromSeconds(10));
        Assert.True(report.Stopped, report.ToString());
        Assert.Empty(t.Failures);
        Assert.All(t.Threads, th => Assert.False(th.IsAlive));
        Assert.Throws<InvalidOperationException>(() => Roles.Waits(t));
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
