using System.Diagnostics;
using System.Net;
using Lab.Experiments;
using Lab.Hosts;
using Lab.Observe;
using Lab.Packets;
using Lab.Sockets;
using Lab.Tests.Sockets;

namespace Lab.Tests.Reliability;

/// <summary>
/// Every public entry point given what learners type wrong: one clear error that names the input and says what to
/// do, quickly, and nothing left behind (no fd, no tracked resource).
/// </summary>
[Collection("ProcessWide")]
public class BadInputTests
{
    /// <summary>A bad input: what it is, the call, and the words the error must contain (the input, the advice).</summary>
    public sealed record Row(string Case, Action Call, params string[] MustSay)
    {
        public override string ToString() => Case;
    }

    static readonly Listener Busy = Listener.Open("127.0.0.1:0", backlog: 4);

    public static TheoryData<Row> Rows() =>
    [
        new Row("empty address", () => Endpoints.Parse(""), "127.0.0.1:8080"),
        new Row("not an address", () => Endpoints.Parse("nonsense"), "nonsense"),
        new Row("port above 65535", () => Listener.Open("127.0.0.1:70000"), "70000"),
        new Row("negative port", () => Listener.Open("127.0.0.1:-1"), "-1"),
        new Row("a host name", () => Listener.Open("localhost:80"), "localhost"),
        new Row("negative backlog", () => Listener.Open("127.0.0.1:0", backlog: -1), "-1"),
        new Row("a port in use", () => Listener.Open(Busy.LocalEndPoint), "EADDRINUSE", Busy.Port.ToString(), "ss -ltnp"),
        new Row("an address not on this host", () => Listener.Open("203.0.113.7:0"), "EADDRNOTAVAIL", "203.0.113.7", "ip -br addr"),
        new Row("connect to a closed port", () => Client.Connect(ClosedPort(), TimeSpan.FromSeconds(5)), "ECONNREFUSED"),
        new Row("connect to port 0", () => Client.Connect("127.0.0.1:0"), "port 0"),
        new Row("negative connect timeout", () => Client.Connect(Busy.LocalEndPoint, TimeSpan.FromSeconds(-1)), "timeout"),
        new Row("connect off this machine", () => Client.Connect("8.8.8.8:53", TimeSpan.FromSeconds(1)), "8.8.8.8", "NetHost.Create"),
        new Row("minus one clients", () => Clients.Open(Busy.LocalEndPoint, -1), "-1"),
        new Row("a million clients", () => Clients.Open(Busy.LocalEndPoint, 1_000_000), "1000000", "ulimit"),
        new Row("a negative descriptor headroom", () => new Lab.Topologies.TopologyOptions { FdHeadroom = -1 }.Validate(), "FdHeadroom", "-1", "0..1024"),
        new Row("a host name with spaces", () => NetHost.Create("my host"), "my host"),
        new Row("an unknown sysctl", () => Sysctl.Set("net.ipv4.tcp_no_such_thing", 1), "net.ipv4.tcp_no_such_thing"),
        new Row("a sysctl out of range", () => Sysctl.Set("net.ipv4.tcp_syncookies", 7), "net.ipv4.tcp_syncookies", "7", "0..2"),
        new Row("a zero sampling interval", () => Sampler.Start(TimeSpan.Zero, () => 1), "1 ms"),
        new Row("a queue watch faster than 1 ms", () => QueueWatch.Start(Busy.LocalEndPoint, interval: TimeSpan.FromMicroseconds(10)), "1 ms"),
        new Row("capture on port 70000", () => PacketCapture.Start(70000), "70000"),
        new Row("capture on a missing interface", () => PacketCapture.Start(80, "nope0"), "nope0", "ip -br link"),
        new Row("a namespace without CAP_NET_ADMIN",
            () => ThreadCaps.Without((int)Capability.NetAdmin, () => NetHost.Create("nocap")), "CAP_NET_ADMIN", "--cap-add=NET_ADMIN"),
        new Row("a needed capability missing",
            () => ThreadCaps.Without((int)Capability.NetRaw, () => { Needs.Capabilities(Capability.NetRaw); return 0; }), "CAP_NET_RAW", "--cap-add=NET_RAW"),
    ];

    static string ClosedPort() => $"127.0.0.1:{Lab.Tests.Sockets.ClosedPort.Pick()}";

    [Theory]
    [MemberData(nameof(Rows))]
    public void EachBadInputGetsOneClearErrorAndLeavesNothingBehind(Row row)
    {
        var fds = Directory.GetFiles("/proc/self/fd").Length;
        var tracked = LabResources.Count().Values.Sum();
        var clock = Stopwatch.StartNew();
        var e = Record.Exception(row.Call);
        Assert.NotNull(e);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"{row.Case}: took {clock.Elapsed}");
        Assert.True(e is ArgumentException or SyscallException or LabSetupException or ObserveException or CellSkippedException or UnauthorizedAccessException,
            $"{row.Case}: {e.GetType().Name}: {e.Message}");
        foreach (var word in row.MustSay)
            Assert.True(e.Message.Contains(word, StringComparison.OrdinalIgnoreCase), $"{row.Case}: the error should say '{word}': {e.Message}");
        Assert.InRange(Directory.GetFiles("/proc/self/fd").Length, 0, fds + 2);
        Assert.Equal(tracked, LabResources.Count().Values.Sum());
    }

    [Fact]
    public void IPv6WhereItIsDisabledGetsAClearError()
    {
        Assert.SkipUnless(Capabilities.Has(Capability.NetAdmin) && Capabilities.Has(Capability.SysAdmin), "needs root for a namespace");
        using var host = NetHost.Create("noipv6");
        host.Run(() => File.WriteAllText("/proc/sys/net/ipv6/conf/all/disable_ipv6", "1"));
        var e = host.Run(() => Record.Exception(() => Listener.Open("[::1]:0")));
        var s = Assert.IsType<SyscallException>(e);
        Assert.Contains("[::1]", s.Message);
        Assert.False(string.IsNullOrWhiteSpace(s.Hint));
    }
}
