using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Lab.Hosts;
using Lab.Sockets;

namespace Lab.Packets;

/// <summary>
/// A TCP client with no kernel socket behind it: it lives in a lab host (a network namespace), writes each handshake
/// segment itself through a raw socket, and reads the answers. Its host's kernel has no socket for the connection,
/// so it would answer the server's SYN-ACK with a reset; <see cref="Open"/> installs an nftables rule in the host
/// that drops the host's outgoing resets for this peer's port. That lets a reader send the SYN in one cell, look at
/// the listener's SYN queue, and send the final ACK in the next.
/// Only sends to the lab's own hosts' subnets or loopback (<see cref="LabAddresses.Ensure"/>).
/// </summary>
public sealed class RawTcpPeer : IDisposable
{
    readonly RawSocket _socket;
    readonly IDisposable? _rstRule;
    readonly Random _random = new();
    int _disposed;
    uint _iss;
    uint _serverIsn;

    /// <summary>The peer's address and port (in its host).</summary>
    public IPEndPoint Local { get; }
    /// <summary>The listener it talks to.</summary>
    public IPEndPoint Remote { get; }
    /// <summary>Segments this peer sent and received, in order.</summary>
    public List<TcpSegment> Log { get; } = new();

    RawTcpPeer(RawSocket socket, IPEndPoint local, IPEndPoint remote, IDisposable? rule)
    {
        _socket = socket; Local = local; Remote = remote; _rstRule = rule;
        _iss = (uint)_random.Next(1, int.MaxValue);
    }

    /// <summary>
    /// Opens a raw peer in <paramref name="host"/> that will talk to <paramref name="listener"/> (which must be
    /// reachable from the host, e.g. at <c>host.HostAddress</c>). Needs CAP_NET_RAW and CAP_NET_ADMIN.
    /// </summary>
    public static RawTcpPeer Open(NetHost host, IPEndPoint listener, int? localPort = null)
    {
        LabAddresses.Ensure(listener.Address, "listener address");
        Needs.Capabilities("a client that writes each handshake segment itself", Capability.NetRaw, Capability.NetAdmin);
        if (listener.AddressFamily != AddressFamily.InterNetwork)
            throw new ArgumentException($"RawTcpPeer speaks IPv4 only; {listener} is not an IPv4 endpoint.", nameof(listener));
        var port = localPort ?? Random.Shared.Next(40000, 60000);
        var rule = host.AddRule("output", $"tcp sport {port} tcp flags rst drop");
        try
        {
            // Created inside the host, the raw socket sends from and receives in the host's namespace.
            var socket = host.Run(() => RawSocket.OpenTcp(headerIncluded: true));
            var peer = new RawTcpPeer(socket, new IPEndPoint(host.Address, port), listener, rule);
            LabResources.Track(peer, "RawTcpPeer");
            return peer;
        }
        catch { rule.Dispose(); throw; }
    }

    /// <summary>Sends the first segment of the handshake: SYN with a fresh initial sequence number.</summary>
    public TcpSegment SendSyn() => Send(TcpFlags.Syn, _iss, 0);

    /// <summary>Waits for the listener's SYN-ACK to our SYN and remembers its sequence number.</summary>
    public TcpSegment? WaitForSynAck(TimeSpan? timeout = null)
    {
        var seg = Receive(s => s.Flags.HasFlag(TcpFlags.Syn) && s.Flags.HasFlag(TcpFlags.Ack), timeout ?? TimeSpan.FromSeconds(3));
        if (seg != null) _serverIsn = seg.Seq;
        return seg;
    }

    /// <summary>Sends the third segment: the ACK of the listener's SYN-ACK, completing the handshake.</summary>
    public TcpSegment SendAck()
    {
        if (_serverIsn == 0)
            throw new InvalidOperationException("No SYN-ACK has been seen yet: call SendSyn() and WaitForSynAck() first.");
        return Send(TcpFlags.Ack, _iss + 1, _serverIsn + 1);
    }

    /// <summary>
    /// Sends <paramref name="data"/> as the first data segment of the connection (PSH+ACK, sequence number right after
    /// the SYN, acknowledging the listener's SYN-ACK): what a client that believes it is connected sends next. Like
    /// every segment after a SYN-cookie SYN-ACK, its ACK field carries the cookie back.
    /// </summary>
    public TcpSegment SendData(ReadOnlySpan<byte> data)
    {
        if (_serverIsn == 0)
            throw new InvalidOperationException("No SYN-ACK has been seen yet: call SendSyn() and WaitForSynAck() first.");
        if (data.Length is 0 or > 1400) throw new ArgumentOutOfRangeException(nameof(data), data.Length, "Send 1 to 1400 bytes: one segment.");
        return SendRaw(Local, TcpFlags.Psh | TcpFlags.Ack, _iss + 1, _serverIsn + 1, log: true, data);
    }

    /// <summary>Sends a reset for the connection (as a client that gives up would).</summary>
    public TcpSegment SendRst() => Send(TcpFlags.Rst, _iss + 1, 0);

    /// <summary>Waits for a reset from the listener (tcp_abort_on_overflow=1 answers a final ACK with one).</summary>
    public TcpSegment? WaitForRst(TimeSpan timeout) => Receive(s => s.Flags.HasFlag(TcpFlags.Rst), timeout);

    /// <summary>
    /// Waits for the next segment from the listener that <paramref name="match"/> accepts (e.g. a reset or a SYN-ACK:
    /// whichever answers first), up to <paramref name="timeout"/>; null when none came. Only segments that arrived
    /// after this peer's last send count: earlier ones were logged, in order, when it sent.
    /// </summary>
    public TcpSegment? WaitFor(Func<TcpSegment, bool> match, TimeSpan timeout) => Receive(match, timeout);

    /// <summary>
    /// Sends <paramref name="count"/> SYNs from the given source addresses (spoofed, one port each), spaced so the whole
    /// burst lasts at most <paramref name="maxDuration"/>. The sources must be in the lab's own hosts' subnets, so the
    /// SYN-ACKs go nowhere but a lab wire. Returns how many were sent. Bounded in count (at most 100,000) and time.
    /// </summary>
    public int SendSynFlood(IReadOnlyList<IPAddress> sources, int count, TimeSpan maxDuration)
    {
        if (count is < 1 or > 100_000) throw new ArgumentOutOfRangeException(nameof(count), count, "A flood is 1 to 100,000 SYNs.");
        if (maxDuration <= TimeSpan.Zero || maxDuration > TimeSpan.FromMinutes(2))
            throw new ArgumentOutOfRangeException(nameof(maxDuration), maxDuration, "A flood lasts more than 0 and at most 2 minutes.");
        if (sources.Count == 0) throw new ArgumentException("Give at least one source address.", nameof(sources));
        foreach (var s in sources) LabAddresses.Ensure(s, "flood source");
        var until = DateTime.UtcNow + maxDuration;
        int sent = 0;
        for (int i = 0; i < count && DateTime.UtcNow < until; i++)
        {
            var src = new IPEndPoint(sources[i % sources.Count], 1024 + (i * 7919) % 60000);
            SendRaw(src, TcpFlags.Syn, (uint)_random.Next(), 0, log: false);
            sent++;
        }
        return sent;
    }

    TcpSegment Send(TcpFlags flags, uint seq, uint ack) => SendRaw(Local, flags, seq, ack, log: true);

    // A segment the listener sent before this send (a SYN-ACK resent by its timer) waits in the raw socket until read:
    // read it now, so the log keeps the wire's order and the next wait sees only what answers this send.
    void LogWhatArrived()
    {
        var buffer = new byte[65536];
        for (int i = 0; i < 1000; i++)
        {
            var n = _socket.Receive(buffer, 0);
            if (n == 0) return;
            var seg = TcpSegment.Parse(buffer.AsSpan(0, n), DateTime.UtcNow);
            if (seg != null && seg.Source.Equals(Remote) && seg.Destination.Port == Local.Port) lock (Log) Log.Add(seg);
        }
    }

    TcpSegment SendRaw(IPEndPoint source, TcpFlags flags, uint seq, uint ack, bool log, ReadOnlySpan<byte> payload = default)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        if (log) LogWhatArrived();
        var tcp = TcpSegment.BuildIPv4(source, Remote, flags, seq, ack, 64240, payload);
        var packet = new byte[20 + tcp.Length];
        packet[0] = 0x45;                        // IPv4, 20-byte header
        BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(2), (ushort)packet.Length);
        packet[6] = 0x40;                        // don't fragment
        packet[8] = 64;                          // TTL
        packet[9] = 6;                           // TCP; the kernel fills in the id and header checksum
        source.Address.GetAddressBytes().CopyTo(packet, 12);
        Remote.Address.GetAddressBytes().CopyTo(packet, 16);
        tcp.CopyTo(packet, 20);
        _socket.SendTo(packet, Remote.Address);
        var seg = new TcpSegment(DateTime.UtcNow, source, Remote, flags, seq, ack, 64240, payload.Length);
        if (log) lock (Log) Log.Add(seg);
        return seg;
    }

    TcpSegment? Receive(Func<TcpSegment, bool> match, TimeSpan timeout)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        var until = DateTime.UtcNow + timeout;
        var buffer = new byte[65536];
        while (true)
        {
            var left = (int)Math.Max(0, (until - DateTime.UtcNow).TotalMilliseconds);
            var n = _socket.Receive(buffer, left);
            if (n == 0) return null;
            var seg = TcpSegment.Parse(buffer.AsSpan(0, n), DateTime.UtcNow);
            if (seg == null || !seg.Source.Equals(Remote) || seg.Destination.Port != Local.Port) continue;
            lock (Log) Log.Add(seg);
            if (match(seg)) return seg;
        }
    }

    /// <summary>Closes the raw socket and removes the reset-dropping rule. Safe to call twice.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _socket.Dispose();
        try { _rstRule?.Dispose(); } catch (LabSetupException) { /* the host is already gone, and its rule with it */ }
        LabResources.Untrack(this);
    }
}
