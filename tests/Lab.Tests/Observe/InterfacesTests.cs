using System.Net;
using System.Text.Json;
using Lab.Observe;

namespace Lab.Tests.Observe;

public class InterfacesTests
{
    [Fact]
    public void LoopbackIsUpWith127001()
    {
        var lo = Interfaces.Find("lo");
        Assert.NotNull(lo);
        Assert.True(lo.Up);
        Assert.True(lo.Loopback);
        Assert.Contains(IPAddress.Loopback, lo.Addresses);
    }

    [Fact]
    public void NamesIndexesAndAddressesMatchIpAddr()
    {
        var lab = Interfaces.List();
        using var json = JsonDocument.Parse(Tool.Run("ip", "-j", "addr"));
        var ip = json.RootElement.EnumerateArray().Select(e => new
        {
            Name = e.GetProperty("ifname").GetString()!,
            Index = e.GetProperty("ifindex").GetInt32(),
            Up = e.GetProperty("flags").EnumerateArray().Any(f => f.GetString() == "UP"),
            Addresses = e.TryGetProperty("addr_info", out var a)
                ? a.EnumerateArray().Select(x => x.GetProperty("local").GetString()!).Order().ToList() : [],
        }).ToList();
        Assert.Equal(ip.Select(i => (i.Index, i.Name, i.Up)), lab.Select(i => (i.Index, i.Name, i.Up)));
        foreach (var i in ip)
        {
            var mine = lab.Single(l => l.Index == i.Index);
            // ip prints link-local IPv6 addresses without the %scope the lab attaches.
            Assert.Equal(i.Addresses, mine.Addresses.Select(a => new IPAddress(a.GetAddressBytes()).ToString()).Order().ToList());
        }
    }
}
