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
}
