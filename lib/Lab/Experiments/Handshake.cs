using System.Diagnostics;
using System.Net;
using Lab.Charts;
using Lab.Hosts;
using Lab.Observe;
using Lab.Packets;
using Lab.Sockets;

namespace Lab.Experiments;

/// <summary>
/// Chapter 02's bench for a handshake stepped one packet per cell: a second host (network namespace + veth), a
/// listener on this side's veth address, a packet capture on that veth (kernel timestamps), and a raw client in the
/// other host that sends each segment only when asked. Dispose removes all of it.
/// <code>
/// using var bench = HandshakeBench.Open(backlog: 3);
/// bench.SendSyn();      // SYN out, SYN-ACK back: the SYN queue reads 1
/// bench.Queues()
/// bench.SendAck();      // the connection moves to the accept queue
/// bench.Accept()        // accept(2) takes it out and makes the fd
/// </code>
/// </summary>
public sealed class HandshakeBench : IDisposable
{
    int _disposed;

    /// <summary>The other host, where the raw client lives.</summary>
    public NetHost Host { get; }
    /// <summary>The listener, on this host's veth address.</summary>
    public Listener Listener { get; }
    /// <summary>Everything on the wire to or from the listener's port, captured on this side of the veth.</summary>
    public PacketCapture Capture { get; }
    /// <summary>The client: no kernel socket, one segment per call.</summary>
    public RawTcpPeer Peer { get; }

    HandshakeBench(NetHost host, Listener listener, PacketCapture capture, RawTcpPeer peer)
    {
        Host = host; Listener = listener; Capture = capture; Peer = peer;
        LabResources.Track(this, "HandshakeBench");
    }

    /// <summary>Creates the host, the listener (listen backlog <paramref name="backlog"/>), the capture and the raw client.
    /// Needs CAP_NET_ADMIN and CAP_NET_RAW.</summary>
    public static HandshakeBench Open(int backlog = 3, string name = "hs")
    {
        var host = NetHost.Create(name);
        Listener? listener = null; PacketCapture? capture = null;
        try
        {
            listener = Listener.Open(new IPEndPoint(host.HostAddress, 0), backlog);
            capture = PacketCapture.Start(listener.Port, host.HostInterface, maxPackets: 200, maxDuration: TimeSpan.FromMinutes(30));
            var peer = RawTcpPeer.Open(host, listener.LocalEndPoint);
            return new HandshakeBench(host, listener, capture, peer);
        }
        catch
        {
            capture?.Dispose(); listener?.Dispose(); host.Dispose();
            throw;
        }
    }

    /// <summary>Sends the SYN, waits for the listener's SYN-ACK (up to 3 s), and returns both as captured on the wire.</summary>
    public IReadOnlyList<TcpSegment> SendSyn()
    {
        var syn = Peer.SendSyn();
        var answer = Peer.WaitForSynAck(TimeSpan.FromSeconds(3))
            ?? throw new InvalidOperationException("No SYN-ACK came back within 3 s: is the listener still open?");
        Capture.WaitFor(s => s.Kind == "SYN-ACK", TimeSpan.FromSeconds(2));
        return Capture.Segments.Where(s => s.Kind is "SYN" or "SYN-ACK").ToList();
    }

    /// <summary>Sends the final ACK and waits (up to 2 s) until the capture has seen it.</summary>
    public TcpSegment SendAck()
    {
        var ack = Peer.SendAck();
        return Capture.WaitFor(s => s.Kind == "ACK" && s.Source.Equals(Peer.Local), TimeSpan.FromSeconds(2)) ?? ack;
    }

    /// <summary>The listener's two queues now (sock_diag).</summary>
    public ListenQueueReading Queues() => ListenQueues.ForPort(Listener.LocalEndPoint);

    /// <summary>The listener's sockets now, like <c>ss -tan</c> for its port: LISTEN, SYN-RECV, ESTAB rows.</summary>
    public SocketTable Sockets() => SocketTable.ForEndPoint(Listener.LocalEndPoint);

    /// <summary>Every segment captured so far, in order, with the kernel's timestamps.</summary>
    public IReadOnlyList<TcpSegment> Segments => Capture.Segments;

    /// <summary>The captured segments as a sequence diagram.</summary>
    public Figure Chart() => LabCharts.Sequence(Capture.Segments, Peer.Local, "client (other host)", "listener (this host)");

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        Peer.Dispose();
        Capture.Dispose();
        Listener.Dispose();
        Host.Dispose();
        LabResources.Untrack(this);
    }
}

/// <summary>What a burst of SYNs from many source ports did to one listener (the SYN queue's limit, measured).</summary>
/// <param name="Backlog">The listen() backlog.</param>
/// <param name="SynsSent">SYNs sent, each from its own source port, none ever acknowledged.</param>
/// <param name="SynRecv">Request sockets (SYN-RECV) for the listener afterwards: the SYN queue's length.</param>
/// <param name="AcceptQueue">The accept queue afterwards (0: no handshake finished).</param>
/// <param name="ReqQFullDoCookies">TcpExt.TCPReqQFullDoCookies delta: SYNs answered with a cookie because the SYN queue was full
/// (machine-wide counter: other traffic can add to it, never subtract).</param>
/// <param name="SyncookiesSent">TcpExt.SyncookiesSent delta.</param>
/// <param name="ReqQFullDrop">TcpExt.TCPReqQFullDrop delta: SYNs dropped because the SYN queue was full and cookies were off.</param>
/// <param name="Syncookies">net.ipv4.tcp_syncookies during the burst.</param>
public sealed record SynQueueProbe(int Backlog, int SynsSent, int SynRecv, int AcceptQueue,
    long ReqQFullDoCookies, long SyncookiesSent, long ReqQFullDrop, long Syncookies);

/// <summary>What a slow acceptor left behind, read from both sides when it stopped.</summary>
/// <param name="Clients">Clients that connected at once.</param>
/// <param name="Served">Connections the application accepted.</param>
/// <param name="ClientsEstablished">Client sockets in ESTABLISHED at the end (served or not).</param>
/// <param name="ClientsSynSent">Client sockets still retrying their SYN.</param>
/// <param name="AcceptQueue">Connections still waiting in the accept queue.</param>
/// <param name="SynQueue">Request sockets still in the SYN queue.</param>
/// <param name="Counters">This namespace's counters that moved during the run (other traffic adds to them).</param>
public sealed record SlowAcceptorOutcome(int Clients, int Served, int ClientsEstablished, int ClientsSynSent, int AcceptQueue, int SynQueue, CounterDelta Counters)
{
    /// <summary>Clients ESTABLISHED on their side for which the server holds nothing: no queued connection, no request socket.</summary>
    public int Stranded => Math.Max(0, ClientsEstablished - Served - AcceptQueue - SynQueue);
}
