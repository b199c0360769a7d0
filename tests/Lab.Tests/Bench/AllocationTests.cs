using Lab.Peers;
using Lab.Topologies;

namespace Lab.Tests.Bench;

/// <summary>
/// What each topology allocates per request while wrk (another process) drives it: the serving path is meant to
/// allocate nothing, so the server's overhead stays small next to what its model does (issue 9's "allocations per
/// request"). GC.GetTotalAllocatedBytes(precise) counts every thread of this process, so background work (the test
/// runner, the Date header rebuilt once a second) is in the figure too: the bound is well under one small object,
/// and the class runs alone (other tests running meanwhile would count).
/// </summary>
[Collection(nameof(Lab.Tests.Sockets.ProcessWide))]
public class AllocationTests
{
    public static TheoryData<string> All => new(TopologyCatalog.All.Select(t => t.Label));

    [Theory]
    [MemberData(nameof(All))]
    public void ServingAllocatesAlmostNothingPerRequest(string label)
    {
        Assert.SkipUnless(Wrk.Installed, "wrk is not installed (apt-get install -y wrk)");
        var create = TopologyCatalog.All.Single(t => t.Label == label).Create;
        using var t = create(new TopologyOptions { Workers = 2, RequestEvents = false });
        t.Start();
        Wrk.Run(t.Url, 1, 8, TimeSpan.FromSeconds(1), ct: TestContext.Current.CancellationToken); // connections open, code paths jitted
        long served = t.Metrics.RequestsServed;
        long before = GC.GetTotalAllocatedBytes(precise: true);
        // 3 s, not 1: starting wrk and reading its output allocate about 60 KB whatever the rate, which on a machine
        // loaded enough to serve only 6,000 requests a second was 9 bytes a request on its own.
        var r = Wrk.Run(t.Url, 1, 8, TimeSpan.FromSeconds(3), ct: TestContext.Current.CancellationToken);
        long bytes = GC.GetTotalAllocatedBytes(precise: true) - before;
        long requests = t.Metrics.RequestsServed - served;
        Assert.True(requests > 100, r.Output);
        double perRequest = (double)bytes / requests;
        Assert.True(perRequest < 8, $"{label}: {bytes:N0} bytes over {requests:N0} requests = {perRequest:0.00} bytes per request");
        TestContext.Current.SendDiagnosticMessage($"{label}: {perRequest:0.00} bytes per request ({bytes:N0} over {requests:N0})");
    }
}
