using Lab.Experiments;
using Lab.Hosts;
using Lab.Sockets;

namespace Lab.Tests.Experiments;

public class WhereToListenTests
{
    [Fact]
    public void TheReachabilityMatrixMatchesTheBindAddress()
    {
        Assert.SkipUnless(Capabilities.Has(Capability.NetAdmin), "needs CAP_NET_ADMIN (run as root)");
        using var host = NetHost.Create("wtl");
        var m = WhereToListen.Matrix(host, TimeSpan.FromMilliseconds(400));
        var t = m.Targets;
        // columns: this→127.0.0.1, this→[::1], this→veth, other→veth, other→127.0.0.1
        Assert.Equal([Reach.Connected, Reach.Refused, Reach.Refused, Reach.Refused, Reach.Refused], t.Select(c => m.Outcome("127.0.0.1", c)));
        Assert.Equal([Reach.Refused, Reach.Refused, Reach.Connected, Reach.Connected, Reach.Refused], t.Select(c => m.Outcome(host.HostAddress.ToString(), c)));
        Assert.Equal([Reach.Connected, Reach.Refused, Reach.Connected, Reach.Connected, Reach.Refused], t.Select(c => m.Outcome("0.0.0.0", c)));
        Assert.Equal([Reach.Connected, Reach.Connected, Reach.Connected, Reach.Connected, Reach.Refused], t.Select(c => m.Outcome("[::]", c)));
        Assert.Equal([Reach.Refused, Reach.Connected, Reach.Refused, Reach.Refused, Reach.Refused], t.Select(c => m.Outcome("[::] (V6ONLY=1)", c)));
        Assert.Equal([Reach.Refused, Reach.Connected, Reach.Refused, Reach.Refused, Reach.Refused], t.Select(c => m.Outcome("[::1]", c)));
        // The heatmap draws the same grid: rows bottom-up (plotly's row 0 is the bottom), 2 = connected, 0 = refused.
        var heat = Assert.Single(Lab.Tests.Charts.FigureTests.Parse(m.Chart())["data"]!.AsArray())!;
        Assert.Equal("heatmap", (string?)heat["type"]);
        var rows = heat["y"]!.AsArray().Select(v => (string)v!).ToList();
        Assert.Equal(m.Listeners.Reverse(), rows);
        var loopback = heat["z"]![rows.IndexOf("127.0.0.1")]!.AsArray().Select(v => (double)v!);
        Assert.Equal([2.0, 0, 0, 0, 0], loopback);
    }

    [Fact]
    public void AFilteredPortTimesOutAndAClosedOneIsRefused()
    {
        Assert.SkipUnless(Capabilities.Has(Capability.NetAdmin), "needs CAP_NET_ADMIN (run as root)");
        using var host = NetHost.Create("wtl2");
        // A second per connect: on a loaded machine an answered connect across the veth can take longer than the
        // chapter's 400 ms (a CI run beside two builds saw even the open and closed ports time out at 300 ms).
        var k = WhereToListen.ClosedVersusFiltered(host, TimeSpan.FromSeconds(1));
        Assert.Equal([Reach.Connected, Reach.Refused, Reach.TimedOut], k.Select(a => a.Outcome));
        Assert.True(k[2].Milliseconds >= 900, $"the filtered connect returned after {k[2].Milliseconds} ms");
    }

    [Fact]
    public void OnlyTheLabsOwnAddressesAreTried()
    {
        Assert.SkipUnless(Capabilities.Has(Capability.NetAdmin), "needs CAP_NET_ADMIN (run as root)");
        using var host = NetHost.Create("wtl3");
        Assert.Throws<ArgumentException>(() => WhereToListen.Try(host, Side.ThisHost, System.Net.IPAddress.Parse("192.0.2.1"), 80));
    }
}
