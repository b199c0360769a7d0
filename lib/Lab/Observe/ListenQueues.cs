using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Lab.Interop;

namespace Lab.Observe;

/// <summary>
/// A listener's two queues at one moment, read from sock_diag.
/// </summary>
/// <param name="Port">The listening port.</param>
/// <param name="AcceptQueue">Connections fully established and waiting for accept() (the LISTEN row's Recv-Q, sk_ack_backlog).</param>
/// <param name="AcceptLimit">The accept queue's limit (the LISTEN row's Send-Q, sk_max_ack_backlog = min(backlog, net.core.somaxconn)).
/// The kernel refuses a new SYN once AcceptQueue &gt; AcceptLimit, so the queue holds at most AcceptLimit + 1.</param>
/// <param name="SynQueue">Request sockets (SYN received, SYN-ACK sent, handshake not finished) whose local port is Port:
/// the SYN queue, which `ss` shows as SYN-RECV.</param>
/// <param name="At">When the kernel was read (UTC).</param>
public readonly record struct ListenQueueReading(int Port, int AcceptQueue, int AcceptLimit, int SynQueue, DateTime At)
{
    /// <summary>How many LISTEN sockets matched (several with SO_REUSEPORT: their queues are summed). 0: nobody listens.</summary>
    public int Listeners { get; init; }

    public override string ToString() =>
        Listeners == 0 ? $"port {Port}: no listener"
        : $"port {Port}: accept queue {AcceptQueue}/{AcceptLimit}, SYN queue {SynQueue}" + (Listeners > 1 ? $" ({Listeners} listeners)" : "");
}

/// <summary>
/// Reads a listener's accept queue and SYN queue. One call reads the kernel once per address family (LISTEN and
/// request sockets in one dump, filtered in the kernel by the listening port).
/// </summary>
public static class ListenQueues
{
    /// <summary>The queues of whatever listens on <paramref name="port"/>; with <paramref name="address"/>, only the
    /// listener bound to that address (IPAddress.Any / IPv6Any for wildcard listeners).</summary>
    public static ListenQueueReading ForPort(int port, IPAddress? address = null)
    {
        using var r = new ListenQueueReader(port, address, track: false);
        return r.Read();
    }

    /// <summary>The queues of the listener bound to <paramref name="listener"/> (e.g. a listening socket's LocalEndPoint).</summary>
    public static ListenQueueReading ForPort(IPEndPoint listener) => ForPort(listener.Port, listener.Address);

    /// <summary>A reusable reader: one netlink socket and prebuilt requests, no allocation per read. For samplers.</summary>
    public static ListenQueueReader Reader(int port, IPAddress? address = null) => new(port, address, track: true);

    /// <summary>A reusable reader for the listener bound to <paramref name="listener"/>.</summary>
    public static ListenQueueReader Reader(IPEndPoint listener) => Reader(listener.Port, listener.Address);

    /// <summary>Samples the queues every <paramref name="interval"/> on one reused netlink socket, closed when the sampler stops.</summary>
    public static Sampler<ListenQueueReading> Sample(int port, TimeSpan interval, IPAddress? address = null,
        TimeSpan? maxDuration = null, int maxSamples = 100_000)
    {
        var reader = new ListenQueueReader(port, address, track: false);
        try { return Sampler.Start(interval, reader.Read, maxDuration, maxSamples, owned: reader); }
        catch { reader.Dispose(); throw; }
    }
}

/// <summary>
/// Reads one listener's queues again and again on one netlink socket. Cost per read, measured on this lab's VM:
/// see ListenQueuesTests.ReadingIsCheap. Thread-safe (reads are serialized); dispose it.
/// </summary>
public sealed class ListenQueueReader : IDisposable
{
    // LISTEN (bit 10) and request sockets only (bit 12: TCP_NEW_SYN_RECV; bit 3 would add full SYN_RECV sockets,
    // which TCP Fast Open children are, and those already sit in the accept queue).
    const uint States = (1u << (int)TcpSocketState.Listen) | (1u << (int)TcpSocketState.NewSynRecv);

    readonly SockDiag _diag;
    readonly AddressFamily[] _families;
    readonly bool _tracked;
    readonly byte[]? _address;
    readonly bool _wildcard;
    int _disposed;

    internal ListenQueueReader(int port, IPAddress? address, bool track)
    {
        if (port is <= 0 or > 65535) throw new ArgumentOutOfRangeException(nameof(port), port, "a listening port is 1..65535");
        Port = port;
        Address = address;
        if (address is not null)
        {
            _wildcard = address.Equals(IPAddress.Any) || address.Equals(IPAddress.IPv6Any);
            _address = address.GetAddressBytes();
            // A wildcard IPv6 listener is dual-stack by default: its IPv4 clients' request sockets can be either family.
            _families = address.Equals(IPAddress.IPv6Any) ? [AddressFamily.InterNetwork, AddressFamily.InterNetworkV6] : [address.AddressFamily];
        }
        else _families = [AddressFamily.InterNetwork, AddressFamily.InterNetworkV6];
        _diag = SockDiagFactory();
        _tracked = track;
        if (track) LabResources.Track(this, "ListenQueueReader");
    }

    static SockDiag SockDiagFactory() => SockDiag.OpenUntracked();

    public int Port { get; }
    public IPAddress? Address { get; }

    /// <summary>Reads the queues now.</summary>
    public ListenQueueReading Read()
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        var c = new Counter { Address = _address, Wildcard = _wildcard, Family = Address?.AddressFamily };
        foreach (var f in _families)
            _diag.Dump(f, States, Port, 0, -1, ref c);
        return new ListenQueueReading(Port, c.Accept, c.Limit, c.Syn, DateTime.UtcNow) { Listeners = c.Listeners };
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _diag.Dispose();
        if (_tracked) LabResources.Untrack(this);
    }

    struct Counter : IDiagRowVisitor
    {
        public byte[]? Address;
        public bool Wildcard;
        public AddressFamily? Family;
        public int Accept, Limit, Syn, Listeners;

        public void Row(in inet_diag_msg m, TcpSocketState state)
        {
            if (state == TcpSocketState.Listen)
            {
                if (Address is not null && !SameAddress(in m, Address)) return;
                Listeners++;
                Accept += (int)m.idiag_rqueue;
                Limit += (int)m.idiag_wqueue;
            }
            else if (state == TcpSocketState.NewSynRecv)
            {
                // A request socket's local address is where the SYN was sent; a wildcard listener owns them all.
                if (Address is not null && !Wildcard && !SameAddress(in m, Address)) return;
                if (Wildcard && Family == AddressFamily.InterNetwork && m.idiag_family != 2) return;
                Syn++;
            }
        }

        static unsafe bool SameAddress(in inet_diag_msg m, byte[] address)
        {
            int len = m.idiag_family == 10 ? 16 : 4;
            if (len != address.Length) return false;
            fixed (uint* src = m.id.idiag_src)
                return new ReadOnlySpan<byte>(src, len).SequenceEqual(address);
        }
    }
}
