using System.Net;
using System.Runtime.InteropServices;
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
    const ushort ETH_P_ALL = 0x0003;
    const byte PACKET_OUTGOING = 4;
    const int SIOCGSTAMPNS = 0x8907;

    [DllImport("libc", EntryPoint = "ioctl", SetLastError = true)]
    static extern unsafe int ioctl_ptr(int fd, nuint request, void* arg);

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
        Needs.Capabilities("the segments captured on " + iface, Lab.Hosts.Capability.NetRaw);
        int raw = socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, htons(ETH_P_ALL));
        if (raw < 0) throw Sys.Fail("socket", "AF_PACKET (packet capture needs CAP_NET_RAW)");
        var fd = new Fd(raw);
        var addr = new sockaddr_ll { sll_family = (ushort)AF_PACKET, sll_protocol = htons(ETH_P_ALL), sll_ifindex = index };
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
                    if (from.sll_pkttype == PACKET_OUTGOING && _iface == "lo") continue;
                    timespec ts;
                    var time = ioctl_ptr(fd, (nuint)SIOCGSTAMPNS, &ts) == 0
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

    /// <summary>Stops capturing; the segments stay readable. Safe to call twice.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _stop = true;
        _thread.Join(TimeSpan.FromSeconds(2));
        _fd.Dispose();
        LabResources.Untrack(this);
    }
}
