using Lab.Experiments;
using Lab.Hosts;
using Lab.Observe;

namespace Lab.Tests.Experiments;

public class SynFloodTests
{
    [Fact]
    public void SpoofedSourcesAreUnassignedAddressesOfTheHostsOwnSubnet()
    {
        Assert.SkipUnless(Capabilities.Has(Capability.NetAdmin), "needs CAP_NET_ADMIN");
        using var host = NetHost.Create("sf1");
        var sources = SynFlood.SpoofedSources(host);
        Assert.Equal(100, sources.Count);
        Assert.All(sources, s => Assert.True(NetHost.IsLabAddress(s)));
        Assert.DoesNotContain(host.Address, sources);
        Assert.DoesNotContain(host.HostAddress, sources);
    }

    [Fact]
    public void CookiesLetLegitimateClientsThroughAFullSynQueue()
    {
        Assert.SkipUnless(Capabilities.Has(Capability.NetAdmin) && Capabilities.Has(Capability.NetRaw), "needs CAP_NET_ADMIN and CAP_NET_RAW");
        using var host = NetHost.Create("sf2");
        var before = host.Run(() => Sysctl.ReadInt("net.ipv4.tcp_syncookies"));
        var on = SynFlood.Run(host, syncookies: 1, backlog: 8, synCount: 200, legitClients: 2);
        Assert.Equal(9, on.PeakSynQueue);
        Assert.Equal(2, on.LegitConnected);
        Assert.True(on.Counters[NetCounters.Names.SyncookiesSent] > 0);
        Assert.Equal(before, host.Run(() => Sysctl.ReadInt("net.ipv4.tcp_syncookies")));
    }

    [Fact]
    public void SpoofedSynsAtLoopbackAreDroppedBecauseTheSynAckHasNoRoute()
    {
        Assert.SkipUnless(Capabilities.Has(Capability.NetAdmin) && Capabilities.Has(Capability.NetRaw), "needs CAP_NET_ADMIN and CAP_NET_RAW");
        using var host = NetHost.Create("sf3");
        var run = LoopbackSpoof.Run(host, synCount: 50);
        Assert.Equal(50, run.SynsSent);
        Assert.Equal(50, run.SynsSeen);
        Assert.Equal(0, run.SynAcksSeen);
        Assert.Equal(0, run.PeakSynQueue);
        Assert.Equal(50, run.Counters[NetCounters.Names.ListenDrops]);
        Assert.Equal(0, run.Counters[NetCounters.Names.TCPReqQFullDrop]);
    }

    [Fact]
    public void DeferAcceptShowsTheSynQueueWithoutCapabilities()
    {
        var run = DeferAccept.Run(clients: 4, senders: 1, deferSeconds: 10);
        Assert.Equal(0UL, run.CapEff);
        Assert.All(run.ClientStates, s => Assert.Equal(Lab.Sockets.TcpState.Established, s));
        Assert.Equal(new DeferSample(run.BeforeData.Seconds, 4, 0), run.BeforeData);
        Assert.Equal(3, run.AfterData.SynQueue);
        Assert.Equal(1, run.AfterData.AcceptQueue);
        Assert.Equal(1, run.Accepted);
        Assert.Equal("hello", run.FirstBytes);
    }
}
