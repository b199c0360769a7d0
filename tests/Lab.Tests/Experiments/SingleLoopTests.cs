using Lab.Experiments;
using Lab.Topologies;

namespace Lab.Tests.Experiments;

[Collection(nameof(TimingCollection))]
public class SingleLoopTests
{
    const int SlowMs = 900;

    [Fact]
    public void OneSlowRequestStallsEveryConnectionOfTheSingleLoop()
    {
        var run = StallRun.Run(new SingleThreadLoop(), fastClients: 3, duration: TimeSpan.FromSeconds(2), slowWorkMs: SlowMs, slowAt: TimeSpan.FromSeconds(0.4));
        Assert.Empty(run.Failures);
        Assert.NotNull(run.SlowMs);
        Assert.True(run.SlowMs >= SlowMs, $"the slow request took {run.SlowMs} ms");
        // Each fast client has a request in flight when the work begins or sends one during it: each waits for the rest of the work.
        Assert.Equal(3, run.ClientsSlowerThan(SlowMs / 2.0));
        Assert.True(run.MaxDuringSlowMs >= SlowMs / 2.0, $"worst fast request during the slow one: {run.MaxDuringSlowMs} ms");
        var late = Assert.IsType<LateClient>(run.Late);
        Assert.True(late.WaitedInAcceptQueueMs >= SlowMs / 10.0, $"late client waited {late.WaitedInAcceptQueueMs:0} ms to be accepted"); // nobody accepts during the work
        Assert.True(late.FirstResponseMs >= SlowMs / 3.0, $"late client's first response took {late.FirstResponseMs} ms");
    }

    [Fact]
    public void WithTwoWorkersOnlyTheSlowRequestsWorkerStalls()
    {
        // Round-robin: fast clients 0 and 2 and the slow client land on worker 0; 1 and 3 on worker 1; the late client on worker 1.
        var run = StallRun.Run(new DispatcherWorkers(new TopologyOptions { Workers = 2 }), fastClients: 4, duration: TimeSpan.FromSeconds(2),
            slowWorkMs: 1500, slowAt: TimeSpan.FromSeconds(0.3));
        Assert.Empty(run.Failures);
        var max = run.MaxPerClient;
        Assert.True(max[0] >= 750 && max[2] >= 750, $"clients on the slow worker: {max[0]:0} and {max[2]:0} ms");
        Assert.True(max[1] < 750 && max[3] < 750, $"clients on the other worker: {max[1]:0} and {max[3]:0} ms");
        var late = Assert.IsType<LateClient>(run.Late);
        Assert.True(run.LateAcceptedBeforeSlowEnded, $"late client accepted at {late.AcceptedAt:0.000} s, slow request answered at {run.SlowEndedAt:0.000} s"); // the dispatcher is free
    }

    [Fact]
    public void WithoutASlowRequestNothingIsCountedAsDuringIt()
    {
        var run = StallRun.Run(new SingleThreadLoop(), fastClients: 2, duration: TimeSpan.FromSeconds(0.5));
        Assert.Empty(run.Failures);
        Assert.Null(run.SlowMs);
        Assert.Null(run.MaxDuringSlowMs);
        Assert.Null(run.Late);
        Assert.Empty(run.DuringSlow);
        Assert.True(run.Requests.Count >= 2);
        Assert.Equal(0, run.Summary().ClientsStalled);
    }

    [Fact]
    public void ManyConnectionsAreServedByTheLoopsOneThread()
    {
        using var t = new SingleThreadLoop();
        t.Start();
        var many = ManyConnections.Run(t, 40, rounds: 3);
        var tid = t.Metrics.Workers.Single().ThreadId;
        Assert.Equal(40, many.EstablishedOnServer);
        Assert.Equal(1, many.ServerThreads);
        Assert.True(many.EventsComplete);
        Assert.Equal([tid], many.TidsThatAccepted);
        Assert.Equal([tid], many.TidsThatRead);
        Assert.Equal(40, many.ConnectionsServed);
        Assert.Equal(160, many.RequestsSent);
        Assert.Equal(160, many.RequestsServed);
        Assert.True(t.Running, "a topology started by the caller is left running");
    }

    [Theory]
    [InlineData(0, 10, 1000, null)]
    [InlineData(2, 0, 1000, null)]
    [InlineData(2, 10, 100, null)]
    [InlineData(2, 10, 1000, 0)]
    public void BadParametersAreRefused(int clients, int everyMs, int durationMs, int? slowMs)
    {
        using var t = new SingleThreadLoop();
        Assert.ThrowsAny<ArgumentException>(() => StallRun.Run(t, clients, TimeSpan.FromMilliseconds(everyMs), TimeSpan.FromMilliseconds(durationMs), slowMs));
        Assert.False(t.Running, "nothing is started when the parameters are refused");
    }
}
