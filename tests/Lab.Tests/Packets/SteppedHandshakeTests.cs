using System.Net;
using System.Net.Sockets;
using Lab.Hosts;
using Lab.Packets;

namespace Lab.Tests.Packets;

public class SteppedHandshakeTests
{
    [Fact]
    public void ARawPeerStepsTheHandshakeOnePacketAtATime()
    {
        Assert.SkipUnless(Capabilities.Has(Capability.NetAdmin) && Capabilities.Has(Capability.NetRaw), "needs CAP_NET_ADMIN and CAP_NET_RAW (run as root)");
        using var host = NetHost.Create("hs");
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(host.HostAddress, 0));
        listener.Listen(4);
        var at = (IPEndPoint)listener.LocalEndPoint!;
        using var capture = PacketCapture.Start(at.Port, host.HostInterface);
        using var peer = RawTcpPeer.Open(host, at);

        var syn = peer.SendSyn();
        var synAck = peer.WaitForSynAck();
        Assert.NotNull(synAck);
        Assert.Equal(syn.Seq + 1, synAck!.Ack);
        // Half-open: one request socket in SYN-RECV for this port, as ss shows it; nothing to accept yet.
        Assert.Equal(1, SynRecvCount(at.Port));
        Assert.False(listener.Poll(100_000, SelectMode.SelectRead));

        peer.SendAck();
        Assert.True(listener.Poll(3_000_000, SelectMode.SelectRead), "the final ACK should move the connection to the accept queue");
        using var accepted = listener.Accept();
        Assert.Equal(peer.Local, accepted.RemoteEndPoint);
        Assert.Equal(0, SynRecvCount(at.Port));

        // The wire saw exactly the three segments, in the order the packet socket got them. (Not by their timestamps:
        // the SYN is stamped as it leaves and the SYN-ACK as it arrives from the host's namespace across the veth, and
        // S1 on a fresh clone read the SYN-ACK stamped before the SYN once.)
        var ack = capture.WaitFor(s => s.Kind == "ACK" && s.Source.Equals(peer.Local), TimeSpan.FromSeconds(2));
        Assert.NotNull(ack);
        var kinds = capture.Segments.Select(s => s.Kind).ToList();
        Assert.Equal(["SYN", "SYN-ACK", "ACK"], kinds.Take(3));
        Assert.Null(capture.Error);
    }

    static int SynRecvCount(int port)
    {
        var r = Command.Run("ss", ["-tanH", "state", "syn-recv", $"( sport = :{port} )"]);
        return r.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length;
    }

    [Fact]
    public void SegmentsRoundTripThroughTheParser()
    {
        var src = new IPEndPoint(IPAddress.Parse("198.18.1.2"), 40001);
        var dst = new IPEndPoint(IPAddress.Parse("198.18.1.1"), 8080);
        var tcp = TcpSegment.BuildIPv4(src, dst, TcpFlags.Syn, 1000, 0, 64240);
        var ip = new byte[20 + tcp.Length];
        ip[0] = 0x45; ip[2] = 0; ip[3] = (byte)ip.Length; ip[9] = 6;
        src.Address.GetAddressBytes().CopyTo(ip, 12);
        dst.Address.GetAddressBytes().CopyTo(ip, 16);
        tcp.CopyTo(ip, 20);
        var seg = TcpSegment.Parse(ip, DateTime.UnixEpoch)!;
        Assert.Equal(src, seg.Source);
        Assert.Equal(dst, seg.Destination);
        Assert.Equal("SYN", seg.Kind);
        Assert.Equal("S", seg.FlagText);
        Assert.Equal(0, seg.PayloadLength);
    }

    [Fact]
    public void ARawPeerRefusesAnyAddressThatIsNotTheLabs()
    {
        Assert.SkipUnless(Capabilities.Has(Capability.NetAdmin), "needs CAP_NET_ADMIN");
        using var host = NetHost.Create("hs2");
        var e = Assert.Throws<ArgumentException>(() => RawTcpPeer.Open(host, new IPEndPoint(IPAddress.Parse("192.0.2.1"), 80)));
        Assert.Contains("192.0.2.1", e.Message);
    }
}
