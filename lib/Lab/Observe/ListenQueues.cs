using Lab.Sockets;
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
/// the SYN queue, which `ss` shows as SYN-RECV. -1 when the reader was asked not to read it (see
/// <see cref="ListenQueues.Reader(int, IPAddress?, bool)"/>: counting it costs a walk of the kernel's whole established table).</param>
/// <param name="At">When the kernel was read (UTC).</param>
public readonly record struct ListenQueueReading(int Port, int AcceptQueue, int AcceptLimit, int SynQueue, DateTime At)
{
    /// <summary>How many LISTEN sockets matched (several with SO_REUSEPORT: their queues are summed). 0: nobody listens.</summary>
    public int Listeners { get; init; }

    public override string ToString() =>
        Listeners == 0 ? $"port {Port}: no listener"
        : $"port {Port}: accept queue {AcceptQueue}/{AcceptLimit}" + (SynQueue >= 0 ? $", SYN queue {SynQueue}" : "") + (Listeners > 1 ? $" ({Listeners} listeners)" : "");
}

/// <summary>
/// Reads a listener's accept queue and SYN queue: one sock_diag dump of LISTEN and request sockets, filtered in the
/// kernel by the listening port.
/// </summary>
/// <remarks>
/// Cost, measured on this lab's VM (2 vCPU, tcp_ehash_entries 262144; ListenQueuesTests prints it): the accept queue
/// alone takes ≈15-30 µs per read (the kernel walks only its listen hash); the SYN queue makes the kernel walk every
/// bucket of the established hash, ≈1 ms per read, whatever the port. So sampling every 1 ms at under 5% of a
/// server's throughput means <c>includeSynQueue: false</c>; sample the SYN queue at 10-20 ms, or run the server in a
/// network namespace created after setting net.ipv4.tcp_child_ehash_entries small (e.g. 1024), which gives that
/// namespace its own small table (with the default 0, namespaces share the host's).
/// </remarks>
public static class ListenQueues
{
    /// <summary>The queues of whatever listens on <paramref name="port"/>; with <paramref name="address"/>, only the
    /// listener bound to that address (IPAddress.Any / IPv6Any for wildcard listeners).</summary>
    public static ListenQueueReading ForPort(int port, IPAddress? address = null)
    {
        using var r = new ListenQueueReader(port, address, includeSynQueue: true, track: false);
        return r.Read();
    }

    /// <summary>The queues of the listener bound to <paramref name="listener"/> (e.g. a listening socket's LocalEndPoint).</summary>
    public static ListenQueueReading ForPort(IPEndPoint listener) => ForPort(listener.Port, listener.Address);

    /// <summary>
    /// How many connections a queue with this limit holds when handshakes finish one at a time: limit + 1. The kernel
    /// calls a queue full when it holds <em>more</em> than the limit (<c>sk_acceptq_is_full</c>,
    /// <c>inet_csk_reqsk_queue_is_full</c>), so one more than the limit fits. Pass the limit after the somaxconn clamp
    /// (<see cref="ListenQueueReading.AcceptLimit"/>); for a small backlog that is the backlog.
    /// </summary>
    public static int OneAtATime(int limit) => limit + 1;

    /// <summary>
    /// How many it can hold when handshakes finish on several CPUs at once: limit + the CPUs. The fullness test runs
    /// without the listener's lock (in <c>tcp_conn_request</c> and <c>tcp_v4_syn_recv_sock</c>), so every CPU that
    /// tests a queue holding exactly the limit passes and adds one. CPUs here: <see cref="Environment.ProcessorCount"/>.
    /// </summary>
    public static int Racing(int limit) => limit + Environment.ProcessorCount;

    /// <summary>
    /// Reads the queues once they have settled: no request socket left in the SYN queue and two readings
    /// <paramref name="gap"/> apart that agree (so no handshake is still on its way through the softirq), or the last
    /// reading after <paramref name="within"/>. For experiments that count what a burst of connects left behind.
    /// </summary>
    public static ListenQueueReading Settled(IPEndPoint listener, TimeSpan? gap = null, TimeSpan? within = null)
    {
        var pause = gap ?? TimeSpan.FromMilliseconds(2);
        var deadline = DateTime.UtcNow + (within ?? TimeSpan.FromSeconds(1));
        using var reader = new ListenQueueReader(listener.Port, listener.Address, includeSynQueue: true, track: false);
        var last = reader.Read();
        while (true)
        {
            Thread.Sleep(pause);
            var now = reader.Read();
            if ((now.SynQueue == 0 && now.AcceptQueue == last.AcceptQueue) || DateTime.UtcNow >= deadline) return now;
            last = now;
        }
    }

    /// <summary>A reusable reader: one netlink socket and a prebuilt request, no allocation per read. For samplers.
    /// With <paramref name="includeSynQueue"/> false it reads only the accept queue (≈50x cheaper; SynQueue reads -1).</summary>
    public static ListenQueueReader Reader(int port, IPAddress? address = null, bool includeSynQueue = true) =>
        new(port, address, includeSynQueue, track: true);

    /// <summary>A reusable reader for the listener bound to <paramref name="listener"/>.</summary>
    public static ListenQueueReader Reader(IPEndPoint listener, bool includeSynQueue = true) =>
        Reader(listener.Port, listener.Address, includeSynQueue);

    /// <summary>Samples the queues every <paramref name="interval"/> on one reused netlink socket, closed when the sampler
    /// stops. At 1 ms, pass <paramref name="includeSynQueue"/> false (see the cost note on <see cref="ListenQueues"/>).</summary>
    public static Sampler<ListenQueueReading> Sample(int port, TimeSpan interval, IPAddress? address = null,
        bool includeSynQueue = true, TimeSpan? maxDuration = null, int maxSamples = 100_000)
    {
        var reader = new ListenQueueReader(port, address, includeSynQueue, track: false);
        try { return Sampler.Start(interval, reader.Read, maxDuration, maxSamples, owned: reader); }
        catch { reader.Dispose(); throw; }
    }
}

/// <summary>
/// Reads one listener's queues again and again on one netlink socket (cost: see <see cref="ListenQueues"/>).
/// Thread-safe (reads are serialized); dispose it.
/// </summary>
public sealed class ListenQueueReader : IDisposable
{
    // LISTEN (bit 10) and request sockets only (bit 12: TCP_NEW_SYN_RECV; bit 3 would add full SYN_RECV sockets,
    // which TCP Fast Open children are, and those already sit in the accept queue).
    const uint ListenAndRequests = (1u << (int)TcpState.Listen) | (1u << (int)TcpState.NewSynRecv);
    const uint ListenOnly = 1u << (int)TcpState.Listen;

    readonly SockDiag _diag;
    readonly AddressFamily _family;
    readonly uint _states;
    readonly bool _tracked;
    readonly byte[]? _address;
    readonly bool _wildcard;
    int _disposed;

    internal ListenQueueReader(int port, IPAddress? address, bool includeSynQueue, bool track)
    {
        if (port is <= 0 or > 65535) throw new ArgumentOutOfRangeException(nameof(port), port, "a listening port is 1..65535");
        Port = port;
        Address = address;
        if (address is not null)
        {
            _wildcard = address.Equals(IPAddress.Any) || address.Equals(IPAddress.IPv6Any);
            _address = address.GetAddressBytes();
            // A wildcard IPv6 listener is dual-stack by default: its IPv4 clients' request sockets can be either family.
            _family = address.Equals(IPAddress.IPv6Any) ? AddressFamily.Unspecified : address.AddressFamily;
        }
        else _family = AddressFamily.Unspecified;
        IncludesSynQueue = includeSynQueue;
        _states = includeSynQueue ? ListenAndRequests : ListenOnly;
        _diag = SockDiag.OpenUntracked();
        _tracked = track;
        if (track) LabResources.Track(this, "ListenQueueReader");
    }

    public int Port { get; }
    public IPAddress? Address { get; }
    /// <summary>False: only the accept queue is read, and readings have SynQueue -1.</summary>
    public bool IncludesSynQueue { get; }

    /// <summary>Reads the queues now.</summary>
    public ListenQueueReading Read()
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        var c = new Counter { Address = _address, Wildcard = _wildcard, Family = Address?.AddressFamily };
        _diag.Dump(_family, _states, Port, 0, -1, ref c);
        return new ListenQueueReading(Port, c.Accept, c.Limit, IncludesSynQueue ? c.Syn : -1, DateTime.UtcNow) { Listeners = c.Listeners };
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

        public void Row(in inet_diag_msg m, TcpState state)
        {
            if (state == TcpState.Listen)
            {
                if (Address is not null && !SameAddress(in m, Address)) return;
                Listeners++;
                Accept += (int)m.idiag_rqueue;
                Limit += (int)m.idiag_wqueue;
            }
            else if (state == TcpState.NewSynRecv)
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
