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
        // Other tests create and delete veths in parallel, and the kernel adds an IPv6 link-local address a moment after a
        // link comes up: compare only the interfaces `ip` shows the same before and after the lab's read (loopback always).
        var before = IpAddr();
        var lab = Interfaces.List();
        var ip = IpAddr().Where(i => before.Any(b => b.Index == i.Index && b.Name == i.Name && b.Up == i.Up && b.Addresses.SequenceEqual(i.Addresses))).ToList();
        Assert.Contains(ip, i => i.Name == "lo");
        Assert.Equal(ip.Select(i => (i.Index, i.Name, i.Up)), lab.Where(l => ip.Any(i => i.Index == l.Index)).Select(i => (i.Index, i.Name, i.Up)));
        foreach (var i in ip)
        {
            var mine = lab.Single(l => l.Index == i.Index);
            // ip prints link-local IPv6 addresses without the %scope the lab attaches.
            Assert.Equal(i.Addresses, mine.Addresses.Select(a => new IPAddress(a.GetAddressBytes()).ToString()).Order().ToList());
        }
    }

    static List<(string Name, int Index, bool Up, List<string> Addresses)> IpAddr()
    {
        using var json = JsonDocument.Parse(Tool.Run("ip", "-j", "addr"));
        return json.RootElement.EnumerateArray().Select(e => (
            e.GetProperty("ifname").GetString()!,
            e.GetProperty("ifindex").GetInt32(),
            e.GetProperty("flags").EnumerateArray().Any(f => f.GetString() == "UP"),
            e.TryGetProperty("addr_info", out var a) ? a.EnumerateArray().Select(x => x.GetProperty("local").GetString()!).Order().ToList() : new List<string>())).ToList();
    }
}
