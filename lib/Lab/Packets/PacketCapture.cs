using System.Net;
using Lab.Interop;
using Lab.Sockets;
using Tmds.Linux;
using static Tmds.Linux.LibC;

namespace Lab.Packets;

/// <summary>
/// Captures TCP segments on one interface through an AF_PACKET socket (what tcpdump uses), filtered to a port,
/// with the kernel's receive timestamp (SIOCGSTAMPNS). Needs CAP_NET_RAW. Bounded: it stops after
/// <c>maxPackets</c> or <c>maxDuration</c>, whichever comes first, or when disposed.
/// On lo every packet passes the capture point twice (out, then in); the outgoing copy is skipped, as tcpdump does.
/// </summary>
public sealed class PacketCapture : IDisposable
{
    readonly Fd _fd;
    readonly int _port;
    readonly string _iface;
    readonly Thread _thread;
    readonly List<TcpSegment> _segments = new();
    readonly int _maxPackets;
    readonly DateTime _deadline;
    volatile bool _stop;
    int _disposed;

    /// <summary>Segments seen so far, in arrival order.</summary>
    public IReadOnlyList<TcpSegment> Segments { get { lock (_segments) return _segments.ToList(); } }

    /// <summary>Raised on the capture thread for every segment (for live sequence diagrams).</summary>
    public event Action<TcpSegment>? OnSegment;

    /// <summary>Why capturing stopped early, if it failed.</summary>
    public Exception? Error { get; private set; }

    PacketCapture(Fd fd, string iface, int port, int maxPackets, TimeSpan maxDuration)
    {
        _fd = fd; _iface = iface; _port = port; _maxPackets = maxPackets;
        _deadline = DateTime.UtcNow + maxDuration;
        _thread = new Thread(Loop) { IsBackground = true, Name = "lab-capture " + iface };
    }

    /// <summary>
    /// Starts capturing TCP segments to or from <paramref name="port"/> on <paramref name="iface"/> (defaults to lo).
    /// Call it from inside <c>NetHost.Run</c> to capture on the namespace's side of a wire.
    /// </summary>
    public static unsafe PacketCapture Start(int port, string iface = "lo", int maxPackets = 10_000, TimeSpan? maxDuration = null)
    {
        if (port is < 1 or > 65535) throw new ArgumentOutOfRangeException(nameof(port), port, "A TCP port is 1-65535.");
        int index = InterfaceIndex(iface);
        Lab.Hosts.Needs.Capabilities("the segments captured on " + iface, Lab.Hosts.Capability.NetRaw);
        // Protocol 0: the socket receives nothing until bind names a protocol, so the port filter is in place before
        // the first packet (libpcap's order). Without a filter every packet on the interface is queued to this socket:
        // beside a load test on lo (millions of segments a second) the 8 MiB below overflowed and the experiment's own
        // segments were among those dropped (a Nagle run counted 17 of its 24 request segments).
        int raw = socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (raw < 0) throw Sys.Fail("socket", "AF_PACKET (packet capture needs CAP_NET_RAW)");
        var fd = new Fd(raw);
        var addr = new sockaddr_ll { sll_family = (ushort)AF_PACKET, sll_protocol = htons(filter.ETH_P_ALL), sll_ifindex = index };
        if (!AttachPortFilter(raw, (ushort)port))
        {
            var error = Sys.Fail("setsockopt", "SO_ATTACH_FILTER (tcp port " + port + ")");
            fd.Dispose();
            throw error;
        }
        if (bind(raw, (sockaddr*)&addr, sizeof(sockaddr_ll)) != 0)
        {
            var error = Sys.Fail("bind", "AF_PACKET on " + iface);
            fd.Dispose();
            throw error;
        }
        // A burst of a few hundred segments overflows the default 208 KiB (net.core.rmem_max) before the capture thread
        // reads them; 8 MiB holds any burst the lab sends. Without CAP_NET_ADMIN the default stays.
        int size = 8 << 20;
        setsockopt(raw, SOL_SOCKET, Lab.Interop.sys_socket.SO_RCVBUFFORCE, &size, sizeof(int));
        var c = new PacketCapture(fd, iface, port, maxPackets, maxDuration ?? TimeSpan.FromSeconds(60));
        LabResources.Track(c, "PacketCapture");
        c._thread.Start();
        return c;
    }

    /// <summary>
    /// Attaches the classic BPF program of tcpdump's "tcp port PORT" (IPv4 with any header length, IPv6 without
    /// extension headers): the kernel then queues only this port's segments. On an AF_PACKET SOCK_DGRAM socket the
    /// program sees the packet from its network header on.
    /// </summary>
    static unsafe bool AttachPortFilter(int fd, ushort port)
    {
        const ushort LDB = filter.BPF_LD | filter.BPF_B | filter.BPF_ABS, LDH = filter.BPF_LD | filter.BPF_H | filter.BPF_ABS,
            LDHX = filter.BPF_LD | filter.BPF_H | filter.BPF_IND, LDXMSH = filter.BPF_LDX | filter.BPF_B | filter.BPF_MSH,
            RSH = filter.BPF_ALU | filter.BPF_RSH | filter.BPF_K, JEQ = filter.BPF_JMP | filter.BPF_JEQ | filter.BPF_K, RET = filter.BPF_RET | filter.BPF_K;
        // Jumps are relative: the target is the next instruction plus the offset. 17 accepts, 18 rejects.
        sock_filter[] program =
        [
            new(LDB, 0, 0, 0),          //  0 A = first byte of the IP header
            new(RSH, 0, 0, 4),          //  1 A = IP version
            new(JEQ, 0, 7, 4),          //  2 IPv4? else 10
            new(LDB, 0, 0, 9),          //  3 A = protocol
            new(JEQ, 0, 13, 6),         //  4 TCP? else reject
            new(LDXMSH, 0, 0, 0),       //  5 X = IPv4 header length
            new(LDHX, 0, 0, 0),         //  6 A = source port
            new(JEQ, 9, 0, port),       //  7 accept
            new(LDHX, 0, 0, 2),         //  8 A = destination port
            new(JEQ, 7, 8, port),       //  9 accept, else reject
            new(JEQ, 0, 7, 6),          // 10 IPv6? else reject
            new(LDB, 0, 0, 6),          // 11 A = next header
            new(JEQ, 0, 5, 6),          // 12 TCP? else reject
            new(LDH, 0, 0, 40),         // 13 A = source port
            new(JEQ, 2, 0, port),       // 14 accept
            new(LDH, 0, 0, 42),         // 15 A = destination port
            new(JEQ, 0, 1, port),       // 16 accept, else reject
            new(RET, 0, 0, 262144),     // 17 accept: the whole packet
            new(RET, 0, 0, 0),          // 18 reject
        ];
        fixed (sock_filter* p = program)
        {
            var prog = new sock_fprog { len = (ushort)program.Length, filter = p };
            return setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(sock_fprog)) == 0;
        }
    }

    /// <summary>Packets the kernel dropped because this capture's socket was full (PACKET_STATISTICS, summed). 0 means none of the port's segments is missing.</summary>
    public long Dropped { get { ReadDrops(); return Interlocked.Read(ref _dropped); } }
    long _dropped;

    unsafe void ReadDrops()
    {
        if (_fd.IsClosed) return;
        tpacket_stats st;
        socklen_t len = sizeof(tpacket_stats);
        try
        {
            using var b = Sys.Borrow(_fd);
            if (getsockopt(b.Fd, filter.SOL_PACKET, filter.PACKET_STATISTICS, &st, &len) == 0) Interlocked.Add(ref _dropped, st.tp_drops);
        }
        catch (ObjectDisposedException) { }
    }

    static int InterfaceIndex(string iface)
    {
        var path = $"/sys/class/net/{iface}/ifindex";
        if (!File.Exists(path))
            throw new ArgumentException($"There is no interface '{iface}' here (in this namespace): `ip -br link` lists them.", nameof(iface));
        return int.Parse(File.ReadAllText(path).Trim());
    }

    unsafe void Loop()
    {
        var buffer = new byte[65536];
        try
        {
            fixed (byte* b = buffer)
            {
                using var borrowed = Sys.Borrow(_fd);
                int fd = borrowed.Fd;
                while (DateTime.UtcNow < _deadline)
                {
                    // After Dispose, what the socket already holds (packets that arrived before it) is still read, then
                    // the loop ends: on a busy machine this thread can be a few packets behind when a cell stops it.
                    bool stopping = _stop;
                    if ((Sys.Poll(_fd, (short)POLLIN, stopping ? 0 : 50, "packet capture") & POLLIN) == 0)
                    {
                        if (stopping) break;
                        continue;
                    }
                    sockaddr_ll from;
                    socklen_t fromLen = sizeof(sockaddr_ll);
                    var n = (int)recvfrom(fd, b, buffer.Length, 0, (sockaddr*)&from, &fromLen);
                    if (n < 0) { var e = Sys.Errno; if (e == EINTR || e == EAGAIN) continue; throw Sys.Fail("recvfrom", "AF_PACKET on " + _iface); }
                    if (from.sll_pkttype == filter.PACKET_OUTGOING && _iface == "lo") continue;
                    timespec ts;
                    var time = sys_ioctl.ioctl_ptr(fd, (nuint)sys_ioctl.SIOCGSTAMPNS, &ts) == 0
                        ? DateTime.UnixEpoch.AddTicks(ts.tv_sec * TimeSpan.TicksPerSecond + ts.tv_nsec / 100)
                        : DateTime.UtcNow;
                    var seg = TcpSegment.Parse(buffer.AsSpan(0, n), time, _iface);
                    if (seg == null || (seg.Source.Port != _port && seg.Destination.Port != _port)) continue;
                    int count;
                    lock (_segments) { _segments.Add(seg); count = _segments.Count; }
                    OnSegment?.Invoke(seg);
                    if (count >= _maxPackets) break;
                }
            }
        }
        catch (Exception e) { Error = e; }
    }

    /// <summary>Waits until a segment matching <paramref name="match"/> has been seen, up to <paramref name="timeout"/>.</summary>
    public TcpSegment? WaitFor(Func<TcpSegment, bool> match, TimeSpan timeout)
    {
        var until = DateTime.UtcNow + timeout;
        do
        {
            lock (_segments)
            {
                var hit = _segments.FirstOrDefault(match);
                if (hit != null) return hit;
            }
            Thread.Sleep(5);
        } while (DateTime.UtcNow < until && _thread.IsAlive);
        lock (_segments) return _segments.FirstOrDefault(match);
    }

    /// <summary>True once <see cref="Dispose"/> has asked the capture thread to stop (it still reads what the socket holds).</summary>
    internal bool Stopping => _stop;

    /// <summary>Stops capturing; the segments stay readable. Safe to call twice.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _stop = true;
        _thread.Join(TimeSpan.FromSeconds(2));
        ReadDrops();
        _fd.Dispose();
        LabResources.Untrack(this);
    }
}
