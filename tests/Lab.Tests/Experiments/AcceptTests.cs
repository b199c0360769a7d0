using Lab.Experiments;
using Lab.Hosts;
using System.Net;
using Lab.Observe;
using Lab.Packets;
using Lab.Sockets;

namespace Lab.Tests.Experiments;

public class AcceptTests
{
    [Fact]
    public void ASysctlSetInsideAHostIsRestoredThereFromAnotherThread()
    {
        Assert.SkipUnless(Capabilities.Has(Capability.NetAdmin), "needs CAP_NET_ADMIN (run as root)");
        var root = Sysctl.ReadInt("net.ipv4.tcp_abort_on_overflow");
        using var host = NetHost.Create("sysr");
        var scope = host.Run(() => Sysctl.Set("net.ipv4.tcp_abort_on_overflow", 1 - root));
        Assert.Equal(1 - root, host.Run(() => Sysctl.ReadInt("net.ipv4.tcp_abort_on_overflow")));
        Assert.Equal(root, Sysctl.ReadInt("net.ipv4.tcp_abort_on_overflow"));
        scope.Dispose(); // on this thread, outside the namespace
        Assert.Equal(root, host.Run(() => Sysctl.ReadInt("net.ipv4.tcp_abort_on_overflow")));
        Assert.Equal(root, Sysctl.ReadInt("net.ipv4.tcp_abort_on_overflow"));
    }

    [Theory]
    [InlineData(0, "SYN-ACK again")]
    [InlineData(1, "RST")]
    public void TheFinalAckMeetingAFullQueueIsResetOnlyWithAbortOnOverflow(int abortOnOverflow, string answer)
    {
        // Chapter 03's stepped handshake, from the same public calls: SYN, SYN-ACK, fill the queue, final ACK.
        Assert.SkipUnless(Capabilities.Has(Capability.NetAdmin) && Capabilities.Has(Capability.NetRaw), "needs CAP_NET_ADMIN and CAP_NET_RAW");
        using var halfOpen = new HalfOpen("aoo");
        var (host, listener, peer) = (halfOpen.Host, halfOpen.Listener, halfOpen.Peer);
        using var fill = host.Run(() => Clients.Open(listener.LocalEndPoint, 2));
        Assert.True(Eventually.Holds(() => listener.ReadAcceptQueue().Full, TimeSpan.FromSeconds(2)));
        var before = host.Run(() => NetCounters.Read());
        TcpSegment ack, reply;
        using (host.Run(() => Sysctl.Set("net.ipv4.tcp_abort_on_overflow", abortOnOverflow)))
        {
            ack = peer.SendAck();
            reply = peer.WaitFor(s => s.Flags.HasFlag(TcpFlags.Rst) || s.Flags.HasFlag(TcpFlags.Syn), TimeSpan.FromSeconds(2.5))
                ?? throw new Xunit.Sdk.XunitException("no answer to the final ACK");
        }
        Assert.Equal(answer, reply.Flags.HasFlag(TcpFlags.Rst) ? "RST" : "SYN-ACK again");
        Assert.True(reply.Time >= ack.Time);
        Assert.True(before.Diff(host.Run(() => NetCounters.Read()))[NetCounters.Names.ListenOverflows] >= 1);
        Assert.Equal(0, host.Run(() => Sysctl.ReadInt("net.ipv4.tcp_abort_on_overflow")));
    }

    [Fact]
    public void ASegmentThatArrivedBeforeASendIsNotTakenForItsAnswer()
    {
        // The listener resends its SYN-ACK after 1 s; a peer that sends its ACK later must not read that SYN-ACK as the
        // answer to the ACK (chapter 03 sends a second peer's ACK after waiting that long for the first's answer).
        Assert.SkipUnless(Capabilities.Has(Capability.NetAdmin) && Capabilities.Has(Capability.NetRaw), "needs CAP_NET_ADMIN and CAP_NET_RAW");
        using var halfOpen = new HalfOpen("aoo2");
        var peer = halfOpen.Peer;
        Thread.Sleep(1500);                                 // the SYN-ACK is resent meanwhile, unread
        peer.SendAck();
        Assert.Equal(3, peer.Log.Count(s => s.Flags.HasFlag(TcpFlags.Syn)));   // SYN, SYN-ACK, SYN-ACK resent: logged before the ACK
        Assert.True(peer.Log[^1].Flags == TcpFlags.Ack);
        Assert.Null(peer.WaitFor(s => s.Flags.HasFlag(TcpFlags.Syn), TimeSpan.FromMilliseconds(300)));
    }

    /// <summary>A listener with backlog 1 in a lab host and a raw peer that has sent its SYN and seen the SYN-ACK.</summary>
    sealed class HalfOpen : IDisposable
    {
        public NetHost Host { get; }
        public Listener Listener { get; }
        public RawTcpPeer Peer { get; }

        public HalfOpen(string name)
        {
            Host = NetHost.Create(name);
            Listener = Host.Run(() => Listener.Open(new IPEndPoint(Host.Address, 0), 1));
            Peer = RawTcpPeer.Open(Host, Listener.LocalEndPoint);
            Peer.SendSyn();
            Assert.NotNull(Peer.WaitForSynAck(TimeSpan.FromSeconds(3)));
        }

        public void Dispose()
        {
            Peer.Dispose();
            Listener.Dispose();
            Host.Dispose();
        }
    }
}
