using System.Net;
using System.Runtime.InteropServices;
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

    readonly int _fd;
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

    PacketCapture(int fd, string iface, int port, int maxPackets, TimeSpan maxDuration)
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
        int fd = socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, htons(ETH_P_ALL));
        if (fd < 0)
        {
            int e = errno;
            throw new UnauthorizedAccessException(e == EPERM
                ? "Capturing packets (an AF_PACKET socket) needs CAP_NET_RAW: run as root, or add --cap-add=NET_RAW to the container's runArgs."
                : $"socket(AF_PACKET) failed: errno {e}.");
        }
        var addr = new sockaddr_ll { sll_family = (ushort)AF_PACKET, sll_protocol = htons(ETH_P_ALL), sll_ifindex = index };
        if (bind(fd, (sockaddr*)&addr, sizeof(sockaddr_ll)) != 0)
        {
            int e = errno;
            close(fd);
            throw new InvalidOperationException($"bind(AF_PACKET, {iface}) failed: errno {e}.");
        }
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
                while (!_stop && DateTime.UtcNow < _deadline)
                {
                    var pfd = new pollfd { fd = _fd, events = POLLIN };
                    int ready = poll(&pfd, 1, 50);
                    if (ready < 0 && errno == EINTR) continue;
                    if (ready <= 0) continue;
                    sockaddr_ll from;
                    socklen_t fromLen = sizeof(sockaddr_ll);
                    var n = (int)recvfrom(_fd, b, buffer.Length, 0, (sockaddr*)&from, &fromLen);
                    if (n < 0) { if (errno == EINTR || errno == EAGAIN) continue; throw new InvalidOperationException($"recvfrom(AF_PACKET) failed: errno {errno}."); }
                    if (from.sll_pkttype == PACKET_OUTGOING && _iface == "lo") continue;
                    timespec ts;
                    var time = ioctl_ptr(_fd, (nuint)SIOCGSTAMPNS, &ts) == 0
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
        close(_fd);
        LabResources.Untrack(this);
    }
}
