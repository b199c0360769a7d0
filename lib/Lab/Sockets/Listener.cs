using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Lab.Interop;
using Tmds.Linux;
using static Lab.Interop.errno;

namespace Lab.Sockets;

/// <summary>
/// A listening TCP socket made with raw syscalls: socket, setsockopt, bind, listen. Accept with
/// <see cref="TryAccept"/> (never waits) or <see cref="Accept"/> (waits inside accept4 in the kernel), and read
/// its accept queue with <see cref="ReadAcceptQueue"/>.
/// </summary>
public sealed unsafe class Listener : IDisposable
{
    /// <summary>
    /// A blocking listener's SO_RCVTIMEO for <see cref="TryAccept"/>: accept(2) honours SO_RCVTIMEO, so a blocking
    /// accept4 on this socket returns EAGAIN after at most this long, which bounds the rare race described there. A
    /// non-blocking listener's <see cref="Accept"/> waits in poll(2) in slices of this length.
    /// </summary>
    public static readonly TimeSpan AcceptSlice = TimeSpan.FromMilliseconds(100);

    /// <summary>The longest single wait of a blocking <see cref="Accept"/> without a timeout: a day, then it waits again.</summary>
    static readonly TimeSpan LongestWait = TimeSpan.FromDays(1);

    readonly string _subject;
    readonly List<BlockedCall> _blocked = new();
    long _rcvTimeoUs = -1;

    Listener(Fd fd, IPEndPoint local, int requestedBacklog, bool nonBlocking)
    {
        Handle = fd;
        LocalEndPoint = local;
        RequestedBacklog = requestedBacklog;
        NonBlocking = nonBlocking;
        _subject = Endpoints.Format(local);
        LabResources.Track(this, "Listener");
    }

    /// <summary>The listening socket's descriptor.</summary>
    public Fd Handle { get; }
    /// <summary>The address the socket is bound to, read back with getsockname (so port 0 shows the port the kernel picked).</summary>
    public IPEndPoint LocalEndPoint { get; }
    /// <summary>The bound port.</summary>
    public int Port => LocalEndPoint.Port;
    /// <summary>The backlog passed to listen(2), before the kernel's somaxconn clamp (see <see cref="ReadAcceptQueue"/> for the effective limit).</summary>
    public int RequestedBacklog { get; }
    /// <summary>Whether the listening socket is O_NONBLOCK (<see cref="ListenerOptions.NonBlocking"/>).</summary>
    public bool NonBlocking { get; }

    /// <summary>Opens a listener on "127.0.0.1:0", "[::1]:0", "0.0.0.0:8080", "::" ... (see <see cref="Endpoints.Parse(string)"/>).</summary>
    /// <param name="endpoint">Where to listen; port 0 lets the kernel pick.</param>
    /// <param name="backlog">listen(2)'s backlog. When left at 128, <see cref="ListenerOptions.Backlog"/> applies.</param>
    /// <param name="options">Socket options; null for the defaults.</param>
    public static Listener Open(string endpoint, int backlog = 128, ListenerOptions? options = null)
        => Open(Endpoints.Parse(endpoint, nameof(endpoint)), backlog, options);

    /// <inheritdoc cref="Open(string, int, ListenerOptions?)"/>
    public static Listener Open(IPEndPoint endpoint, int backlog = 128, ListenerOptions? options = null)
    {
        Endpoints.Validate(endpoint, nameof(endpoint));
        options ??= new ListenerOptions();
        if (backlog == 128) backlog = options.Backlog;
        if (backlog < 0)
            throw new ArgumentOutOfRangeException(nameof(backlog), backlog,
                $"A backlog of {backlog} is negative; use 0 or more (the kernel caps it at net.core.somaxconn, and lets backlog+1 connections wait).");
        if (options.DeferAcceptSeconds < 0)
            throw new ArgumentOutOfRangeException(nameof(options), options.DeferAcceptSeconds, "ListenerOptions.DeferAcceptSeconds must be 0 (off) or a number of seconds.");
        if (options.ReceiveBufferSize is <= 0 || options.SendBufferSize is <= 0)
            throw new ArgumentOutOfRangeException(nameof(options), "ListenerOptions.ReceiveBufferSize/SendBufferSize must be positive byte counts, or null for the kernel default.");

        string subject = Endpoints.Format(endpoint);
        bool v6 = endpoint.AddressFamily == AddressFamily.InterNetworkV6;
        int type = sys_socket.SOCK_STREAM | sys_socket.SOCK_CLOEXEC | (options.NonBlocking ? sys_socket.SOCK_NONBLOCK : 0);
        int raw = LibC.socket(v6 ? sys_socket.AF_INET6 : sys_socket.AF_INET, type, sys_socket.IPPROTO_TCP);
        if (raw < 0) throw Sys.Fail("socket", v6 ? "AF_INET6, SOCK_STREAM" : "AF_INET, SOCK_STREAM", endpoint);
        var fd = new Fd(raw);
        try
        {
            if (options.ReuseAddress) Sys.SetInt(fd, sys_socket.SOL_SOCKET, sys_socket.SO_REUSEADDR, 1, $"SO_REUSEADDR on {subject}");
            if (options.ReusePort) Sys.SetInt(fd, sys_socket.SOL_SOCKET, sys_socket.SO_REUSEPORT, 1, $"SO_REUSEPORT on {subject}");
            if (v6 && options.V6Only is bool only) Sys.SetInt(fd, sys_socket.IPPROTO_IPV6, sys_socket.IPV6_V6ONLY, only ? 1 : 0, $"IPV6_V6ONLY on {subject}");
            if (options.ReceiveBufferSize is int rcv) Sys.SetInt(fd, sys_socket.SOL_SOCKET, sys_socket.SO_RCVBUF, rcv, $"SO_RCVBUF on {subject}");
            if (options.SendBufferSize is int snd) Sys.SetInt(fd, sys_socket.SOL_SOCKET, sys_socket.SO_SNDBUF, snd, $"SO_SNDBUF on {subject}");
            if (options.DeferAcceptSeconds > 0) Sys.SetInt(fd, sys_socket.IPPROTO_TCP, netinet_tcp.TCP_DEFER_ACCEPT, options.DeferAcceptSeconds, $"TCP_DEFER_ACCEPT on {subject}");

            int len = SockAddr.From(endpoint, out var sa);
            using (var b = Sys.Borrow(fd))
            {
                if (LibC.bind(b.Fd, (sockaddr*)&sa, len) != 0) throw Sys.Fail("bind", subject, endpoint);
                if (LibC.listen(b.Fd, backlog) != 0) throw Sys.Fail("listen", $"{subject}, backlog {backlog}", endpoint);
            }
            var local = SockAddr.Name(fd, peer: false) ?? endpoint;
            var listener = new Listener(fd, local, backlog, options.NonBlocking);
            if (!options.NonBlocking) listener.SetAcceptTimeout(AcceptSlice);
            return listener;
        }
        catch
        {
            fd.Dispose();
            throw;
        }
    }

    /// <summary>
    /// One accept4(2) that never waits: <see cref="AcceptResult.Accepted"/>, or <see cref="AcceptResult.WouldBlock"/>
    /// when the queue is empty. On a non-blocking listener this is a plain accept4 (EAGAIN → WouldBlock). On a
    /// blocking listener it first asks poll(2) with a zero timeout whether the queue has a connection and returns
    /// WouldBlock if not; if another thread takes that connection between the poll and the accept4, the accept4
    /// waits for the next one for at most <see cref="AcceptSlice"/> (the listener's SO_RCVTIMEO) and then returns
    /// WouldBlock. Several threads accepting one socket should use <see cref="ListenerOptions.NonBlocking"/>.
    /// Unexpected errors (EMFILE, ENFILE, ENOBUFS...) throw <see cref="SyscallException"/>; the connection stays queued.
    /// </summary>
    public AcceptResult TryAccept(AcceptFlags flags = AcceptFlags.CloseOnExec)
    {
        CheckFlags(flags);
        if (!NonBlocking && (Sys.Poll(Handle, LibC.POLLIN, 0, _subject) & LibC.POLLIN) == 0)
            return AcceptResult.WouldBlock.Instance;
        if (!NonBlocking) SetAcceptTimeout(AcceptSlice);
        return AcceptOnce(flags);
    }

    /// <summary>
    /// Waits for a connection and accepts it. On a blocking listener the thread waits inside one accept4 in the kernel
    /// (its wait channel reads inet_csk_accept) for the whole <paramref name="timeout"/>, set as SO_RCVTIMEO: so
    /// threads blocked in Accept on one listener take connections in the kernel's order, first come first served
    /// (exclusive waiters, woken one at a time from the head of the listener's wait queue). Cancellation of
    /// <paramref name="ct"/>, <see cref="Dispose"/>, or the notebook engine stopping the cell that called it wake the
    /// thread with a signal (accept4 returns EINTR; the listening socket is untouched). On a non-blocking listener it
    /// waits in poll(2) instead, in slices of <see cref="AcceptSlice"/>. Returns <see cref="AcceptResult.TimedOut"/> when
    /// <paramref name="timeout"/> runs out (null = wait until a connection, cancellation or disposal).
    /// </summary>
    /// <exception cref="OperationCanceledException"><paramref name="ct"/> was cancelled, or the engine stopped the cell.</exception>
    /// <exception cref="ObjectDisposedException">The listener was disposed while waiting.</exception>
    public AcceptResult Accept(TimeSpan? timeout = null, CancellationToken ct = default, AcceptFlags flags = AcceptFlags.CloseOnExec)
    {
        CheckFlags(flags);
        if (timeout is { } t && t < TimeSpan.Zero && t != Timeout.InfiniteTimeSpan)
            throw new ArgumentOutOfRangeException(nameof(timeout), t, "The timeout must be zero or positive (null waits until a connection arrives or ct is cancelled).");
        long budgetTicks = timeout is { } tt && tt != Timeout.InfiniteTimeSpan ? tt.Ticks : long.MaxValue;
        var clock = Stopwatch.StartNew();
        if (!NonBlocking) return AcceptBlocking(budgetTicks, clock, ct, flags);
        while (true)
        {
            ct.ThrowIfCancellationRequested();
            ObjectDisposedException.ThrowIf(Handle.IsClosed, this);
            long left = budgetTicks == long.MaxValue ? long.MaxValue : budgetTicks - clock.Elapsed.Ticks;
            if (left <= 0)
            {
                // Out of time (or a zero timeout): one last look that never waits.
                var last = TryAccept(flags);
                return last is AcceptResult.WouldBlock ? AcceptResult.TimedOut.Instance : last;
            }
            var slice = TimeSpan.FromTicks(Math.Min(left, AcceptSlice.Ticks));
            if ((Sys.Poll(Handle, LibC.POLLIN, Math.Max(1, Sys.Milliseconds(slice)), _subject) & LibC.POLLIN) == 0) continue;
            var r = AcceptOnce(flags);
            if (r is AcceptResult.WouldBlock) continue; // another thread took it
            return r;
        }
    }

    AcceptResult AcceptBlocking(long budgetTicks, Stopwatch clock, CancellationToken ct, AcceptFlags flags)
    {
        ct.ThrowIfCancellationRequested();
        ObjectDisposedException.ThrowIf(Handle.IsClosed, this);
        var call = BlockedCall.Enter(ct, $"accept4 on {_subject}");
        lock (_blocked) _blocked.Add(call);
        try
        {
            while (true)
            {
                switch (call.Woken)
                {
                    case BlockedCall.Reason.Cancelled: ct.ThrowIfCancellationRequested(); break;
                    case BlockedCall.Reason.Stopped: throw new OperationCanceledException($"accept4 on {_subject} was stopped: the cell that called it was stopped.");
                    case BlockedCall.Reason.Disposed: throw new ObjectDisposedException(ToString(), "The listener was disposed while a thread waited in accept4.");
                }
                ObjectDisposedException.ThrowIf(Handle.IsClosed, this);
                long left = budgetTicks == long.MaxValue ? LongestWait.Ticks : budgetTicks - clock.Elapsed.Ticks;
                if (left <= 0)
                {
                    // Out of time (or a zero timeout): one last look that never waits.
                    var last = TryAccept(flags);
                    return last is AcceptResult.WouldBlock ? AcceptResult.TimedOut.Instance : last;
                }
                SetAcceptTimeout(TimeSpan.FromTicks(Math.Min(left, LongestWait.Ticks)));
                var result = AcceptOnce(flags, interruptible: true);
                if (result is AcceptResult.WouldBlock) continue; // the timeout ran out (EAGAIN) or a signal woke it (EINTR)
                return result;
            }
        }
        finally
        {
            lock (_blocked) _blocked.Remove(call);
            call.Leave();
        }
    }

    AcceptResult AcceptOnce(AcceptFlags flags, bool interruptible = false)
    {
        sockaddr_union sa = default;
        socklen_t len = SockAddr.MaxLength;
        int fd;
        using (var b = Sys.Borrow(Handle))
        {
            do fd = LibC.accept4(b.Fd, (sockaddr*)&sa, &len, (int)flags);
            while (!interruptible && Sys.Interrupted(fd));
        }
        if (fd >= 0)
        {
            var conn = new Connection(new Fd(fd), SockAddr.ToEndPoint(sa), nonBlocking: (flags & AcceptFlags.NonBlock) != 0, LocalEndPoint);
            return new AcceptResult.Accepted(conn);
        }
        int err = Sys.Errno;
        switch (err)
        {
            case EAGAIN:
            case EINTR when interruptible:
                return AcceptResult.WouldBlock.Instance;
            // accept(2): "Linux accept() passes already-pending network errors on the new socket as an error code
            // from accept() ... these errors should be treated like EAGAIN by retrying" (ECONNABORTED in particular).
            case ECONNABORTED or ENETDOWN or EPROTO or ENOPROTOOPT or EHOSTDOWN or ENONET or EHOSTUNREACH or EOPNOTSUPP or ENETUNREACH:
                return AcceptResult.Aborted.For(err);
            default:
                throw Sys.Fail("accept4", _subject, err, LocalEndPoint);
        }
    }

    void SetAcceptTimeout(TimeSpan slice)
    {
        long us = Math.Max(1, slice.Ticks / 10); // SO_RCVTIMEO of 0 would mean "wait forever"
        if (Interlocked.Exchange(ref _rcvTimeoUs, us) == us) return;
        Sys.SetTimeval(Handle, sys_socket.SO_RCVTIMEO, TimeSpan.FromTicks(us * 10), $"SO_RCVTIMEO on {_subject}");
    }

    static void CheckFlags(AcceptFlags flags)
    {
        if ((flags & ~(AcceptFlags.NonBlock | AcceptFlags.CloseOnExec)) != 0)
            throw new ArgumentOutOfRangeException(nameof(flags), flags, "accept4 takes only AcceptFlags.NonBlock and AcceptFlags.CloseOnExec.");
    }

    /// <summary>
    /// The accept queue now, from TCP_INFO on the listening socket: tcpi_unacked is its length, tcpi_sacked its
    /// limit (the backlog after the somaxconn clamp). ss -ltn prints the same two numbers as Recv-Q and Send-Q.
    /// </summary>
    public AcceptQueueReading ReadAcceptQueue()
    {
        var info = TcpInfo.ReadRaw(Handle, out _, _subject);
        return new AcceptQueueReading((int)info.tcpi_unacked, (int)info.tcpi_sacked);
    }

    /// <summary>
    /// TCP_DEFER_ACCEPT on the listening socket, in seconds: set with setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT), read
    /// back with getsockopt. While it runs, a handshake's bare final ACK is dropped (<c>tcp_check_req</c>) and the
    /// connection stays a request socket in the SYN queue until data arrives. The kernel keeps the value as a number of
    /// SYN-ACK retransmissions (<c>secs_to_retrans</c>), so it reads back rounded up to their schedule: 10 s reads as 15
    /// (1 + 2 + 4 + 8). 0 turns it off. <see cref="ListenerOptions.DeferAcceptSeconds"/> sets it before listen(2).
    /// </summary>
    public int DeferAcceptSeconds
    {
        get => Sys.GetInt(Handle, sys_socket.IPPROTO_TCP, netinet_tcp.TCP_DEFER_ACCEPT, $"TCP_DEFER_ACCEPT on {_subject}");
        set => Sys.SetInt(Handle, sys_socket.IPPROTO_TCP, netinet_tcp.TCP_DEFER_ACCEPT,
            value >= 0 ? value : throw new ArgumentOutOfRangeException(nameof(value), value, "TCP_DEFER_ACCEPT is 0 (off) or a number of seconds."),
            $"TCP_DEFER_ACCEPT on {_subject}");
    }

    /// <summary>Closes the listening socket; connections still in its accept queue are reset. Safe to call twice.</summary>
    public void Dispose()
    {
        // Wake threads blocked in accept4 first: the descriptor is only closed once they let go of it.
        lock (_blocked) foreach (var call in _blocked) call.Wake(BlockedCall.Reason.Disposed);
        Handle.Dispose();
        LabResources.Untrack(this);
    }

    /// <inheritdoc/>
    public override string ToString() => $"Listener {_subject} ({Handle}, backlog {RequestedBacklog}{(NonBlocking ? ", non-blocking" : "")})";
}
