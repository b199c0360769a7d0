using Lab.Load;
using Lab.Topologies;

namespace Lab.Tests.Load;

[Collection(nameof(TimingCollection))]
public class InOrderTests
{
    [Fact]
    public void ClientsReachARoundRobinDispatcherInTheirOrder()
    {
        using var server = new DispatcherWorkers(new TopologyOptions { Workers = 2 });
        server.Start();
        (RequestMix, double)[] clients = [(RequestMix.Work(5), 20), (RequestMix.Hello(), 30), (RequestMix.Work(5), 21), (RequestMix.Hello(), 31)];
        var results = InOrder.Run(Endpoints(server), clients, TimeSpan.FromSeconds(0.6), () => server.Events.Count(TopologyEventKind.Accepted));
        Assert.Equal(4, results.Count);
        Assert.All(results, r => Assert.True(r.Completed > 0 && r.Errors.Total == 0, r.ToString()));
        Assert.Equal(["/work?ms=5", "/", "/work?ms=5", "/"], results.Select(r => r.Options.Mix![0].Path));
        // The dispatcher deals in turn, so the order of connecting is the order of the Handoff events: w0, w1, w0, w1.
        var workers = server.Metrics.Workers;
        Assert.Equal(["w0", "w1", "w0", "w1"], server.Events.Of(TopologyEventKind.Handoff).Select(e => workers[(int)e.Value].Name));
        // Every /work request ran on w0, the worker of clients 0 and 2.
        var heavy = server.Events.Of(TopologyEventKind.RequestStarted).Where(e => e.Value > 0).Select(e => workers[e.Worker].Name).Distinct();
        Assert.Equal(["w0"], heavy);
    }

    [Fact]
    public void BadArgumentsAreRefusedBeforeAnythingConnects()
    {
        long calls = 0;
        long Accepted() => ++calls;
        Assert.Throws<ArgumentOutOfRangeException>(() => InOrder.Run("127.0.0.1:1", [], TimeSpan.FromSeconds(1), Accepted));
        Assert.Throws<ArgumentOutOfRangeException>(() => InOrder.Run("127.0.0.1:1", [(RequestMix.Hello(), 10)], TimeSpan.FromSeconds(60), Accepted));
        Assert.Throws<ArgumentOutOfRangeException>(() => InOrder.Run("127.0.0.1:1", [(RequestMix.Hello(), 0)], TimeSpan.FromSeconds(1), Accepted));
        Assert.Equal(0, calls);
    }

    static string Endpoints(Topology t) => Lab.Sockets.Endpoints.Format(t.LocalEndPoint);
}
