using System.Net;
using Lab.Interop;
using Tmds.Linux;
using static Lab.Interop.errno;

namespace Lab.Sockets;

/// <summary>
/// One TCP connection, accepted or client side, on a raw socket. Reads and writes return <see cref="IoResult"/>
/// values (data, end of stream, would block, reset); queue depths come from ioctl and TCP_INFO.
/// </summary>
public sealed unsafe class Connection : IDisposable
{
    IPEndPoint? _local;
    readonly IPEndPoint? _remote;

    internal Connection(Fd fd, IPEndPoint? remote, bool nonBlocking, IPEndPoint? local = null)
    {
        Handle = fd;
        _remote = remote;
        _local = local is { Port: not 0 } && !local.Address.Equals(IPAddress.Any) && !local.Address.Equals(IPAddress.IPv6Any) ? local : null;
        _nonBlockingCache = nonBlocking;
        LabResources.Track(this, "Connection");
    }

    bool _nonBlockingCache;

    /// <summary>The connection's descriptor.</summary>
    public Fd Handle { get; }

    /// <summary>This side's address and port (getsockname; a client's port appears once connect has started).</summary>
    public IPEndPoint LocalEndPoint
    {
        get
        {
            if (_local is not null) return _local;
            var ep = SockAddr.Name(Handle, peer: false)!;
            if (ep.Port != 0) _local = ep;
            return ep;
        }
    }

    /// <summary>The peer's address and port (from accept4, or the address connect was given).</summary>
    public IPEndPoint RemoteEndPoint => _remote ?? SockAddr.Name(Handle, peer: true) ?? new IPEndPoint(IPAddress.None, 0);

    string Subject => Handle.IsClosed ? "closed connection" : $"{Handle} {Endpoints.Format(RemoteEndPoint)}";

    /// <summary>O_NONBLOCK on the socket (fcntl F_GETFL/F_SETFL).</summary>
    public bool NonBlocking
    {
        get
        {
            using var b = Sys.Borrow(Handle);
            int fl = LibC.fcntl(b.Fd, LibC.F_GETFL);
            if (fl < 0) throw Sys.Fail("fcntl(F_GETFL)", $"fd {b.Fd}");
            return _nonBlockingCache = (fl & LibC.O_NONBLOCK) != 0;
        }
        set
        {
            using var b = Sys.Borrow(Handle);
            int fl = LibC.fcntl(b.Fd, LibC.F_GETFL);
            if (fl < 0) throw Sys.Fail("fcntl(F_GETFL)", $"fd {b.Fd}");
            int want = value ? fl | LibC.O_NONBLOCK : fl & ~LibC.O_NONBLOCK;
            if (want != fl && LibC.fcntl(b.Fd, LibC.F_SETFL, want) != 0) throw Sys.Fail("fcntl(F_SETFL)", $"fd {b.Fd}");
            _nonBlockingCache = value;
        }
    }

    /// <summary>
    /// One recv(2). Data(n), EndOfStream when the peer sent FIN, WouldBlock on EAGAIN (non-blocking, or the
    /// <see cref="SetReceiveTimeout"/> ran out), Reset on ECONNRESET. An empty buffer returns Data(0) without a call.
    /// </summary>
    public IoResult Read(Span<byte> buffer)
    {
        if (buffer.IsEmpty) return IoResult.Data(0);
        long n;
        using (var b = Sys.Borrow(Handle))
        fixed (byte* p = buffer)
        {
            do n = LibC.recv(b.Fd, p, buffer.Length, 0);
            while (Sys.Interrupted(n));
        }
        if (n > 0) return IoResult.Data((int)n);
        if (n == 0) return IoResult.EndOfStream();
        return Failed("recv", Sys.Errno);
    }

    /// <summary>One send(2) with MSG_NOSIGNAL (no SIGPIPE): Data(n) (possibly fewer than given), WouldBlock, or Reset (ECONNRESET/EPIPE).</summary>
    public IoResult Write(ReadOnlySpan<byte> data)
    {
        if (data.IsEmpty) return IoResult.Data(0);
        long n;
        using (var b = Sys.Borrow(Handle))
        fixed (byte* p = data)
        {
            do n = LibC.send(b.Fd, p, data.Length, sys_socket.MSG_NOSIGNAL);
            while (Sys.Interrupted(n));
        }
        if (n >= 0) return IoResult.Data((int)n);
        return Failed("send", Sys.Errno);
    }

    IoResult Failed(string call, int err) => err switch
    {
        EAGAIN => IoResult.WouldBlock,
        ECONNRESET or EPIPE => IoResult.Reset(err),
        _ => throw Sys.Fail(call, Subject, err, _remote),
    };

    /// <summary>
    /// Reads whatever arrives first (waiting up to <paramref name="timeout"/>, default 10 s, in poll(2)): the bytes
    /// read, 0 at end of stream or reset. Throws <see cref="TimeoutException"/> if nothing arrives in time.
    /// </summary>
    public int ReadSome(Span<byte> buffer, TimeSpan? timeout = null)
    {
        var r = ReadWithin(buffer, timeout ?? TimeSpan.FromSeconds(10));
        return r.IsData ? r.Bytes : 0;
    }

    /// <summary>
    /// Reads until <paramref name="buffer"/> is full (Data(buffer.Length)), or returns EndOfStream/Reset carrying the
    /// bytes read before it. Waits in poll(2) up to <paramref name="timeout"/> in total (default 10 s), then throws
    /// <see cref="TimeoutException"/>.
    /// </summary>
    public IoResult ReadExactly(Span<byte> buffer, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(10));
        int got = 0;
        while (got < buffer.Length)
        {
            var r = ReadWithin(buffer[got..], deadline - DateTime.UtcNow);
            if (!r.IsData) return r with { Bytes = got };
            got += r.Bytes;
        }
        return IoResult.Data(got);
    }

    IoResult ReadWithin(Span<byte> buffer, TimeSpan left)
    {
        // poll first, so a blocking socket never waits in recv beyond the caller's timeout.
        var deadline = DateTime.UtcNow + left;
        for (int i = 0; i < 1_000_000; i++)
        {
            var ms = Sys.Milliseconds(deadline - DateTime.UtcNow);
            if (ms <= 0 && i > 0) break;
            if (Sys.Poll(Handle, Sys.POLLIN_ERR_HUP, ms, Subject) == 0) continue;
            var r = Read(buffer);
            if (!r.IsWouldBlock) return r;
        }
        throw new TimeoutException($"Nothing to read from {Subject} in time.");
    }

    /// <summary>
    /// Writes all of <paramref name="data"/>, waiting for room in poll(2) when the socket is non-blocking or a send
    /// timeout ran out: Data(total), or Reset carrying the bytes written before it. Throws
    /// <see cref="TimeoutException"/> after <paramref name="timeout"/> (default 10 s), e.g. when the peer stops reading.
    /// </summary>
    public IoResult WriteAll(ReadOnlySpan<byte> data, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(10));
        int sent = 0;
        while (sent < data.Length)
        {
            var r = Write(data[sent..]);
            if (r.IsData) { sent += r.Bytes; continue; }
            if (r.IsReset) return r with { Bytes = sent };
            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero)
                throw new TimeoutException($"Wrote {sent} of {data.Length} bytes to {Subject}; no room for the rest in time (OutQueue {OutQueue}: is the peer reading?).");
            Sys.Poll(Handle, Sys.POLLOUT_ERR_HUP, Math.Max(1, Sys.Milliseconds(left)), Subject);
        }
        return IoResult.Data(sent);
    }

    /// <summary>
    /// poll(2) for POLLOUT, up to <paramref name="timeout"/>: true when a write would find room. For TCP that is when
    /// the send queue's free space is at least a third of its buffer (sk_stream_is_writeable), not merely when one byte fits.
    /// </summary>
    public bool WaitWritable(TimeSpan timeout) =>
        (Sys.Poll(Handle, Sys.POLLOUT_ERR_HUP, Math.Max(0, Sys.Milliseconds(timeout)), Subject) & LibC.POLLOUT) != 0;

    /// <summary>shutdown(2). ShutdownHow.Write sends FIN: the peer's reads see EndOfStream. A connection already reset (ENOTCONN) is left as is.</summary>
    public void Shutdown(ShutdownHow how)
    {
        if (how is < ShutdownHow.Read or > ShutdownHow.Both) throw new ArgumentOutOfRangeException(nameof(how), how, "Use ShutdownHow.Read, Write or Both.");
        using var b = Sys.Borrow(Handle);
        if (LibC.shutdown(b.Fd, (int)how) != 0 && Sys.Errno != ENOTCONN) throw Sys.Fail("shutdown", Subject);
    }

    /// <summary>Graceful close: close(2) sends FIN after queued data (or RST if unread data is still queued here). Same as Dispose.</summary>
    public void Close() => Dispose();

    /// <summary>Abortive close: SO_LINGER {1, 0} then close(2), so the kernel sends RST and the peer's next read sees Reset.</summary>
    public void Reset()
    {
        if (Handle.IsClosed) return;
        var l = new Lab.Interop.linger { l_onoff = 1, l_linger = 0 };
        using (var b = Sys.Borrow(Handle))
            if (LibC.setsockopt(b.Fd, sys_socket.SOL_SOCKET, sys_socket.SO_LINGER, &l, (socklen_t)sizeof(Lab.Interop.linger)) != 0)
                throw Sys.Fail("setsockopt", $"SO_LINGER on {Subject}");
        Dispose();
    }

    /// <summary>TCP_NODELAY: send small segments at once instead of waiting for outstanding data to be acknowledged (Nagle off).</summary>
    public bool NoDelay { get => GetTcp(netinet_tcp.TCP_NODELAY) != 0; set => SetTcp(netinet_tcp.TCP_NODELAY, value ? 1 : 0); }
    /// <summary>TCP_CORK: hold partial segments until uncorked (or 200 ms pass).</summary>
    public bool Cork { get => GetTcp(netinet_tcp.TCP_CORK) != 0; set => SetTcp(netinet_tcp.TCP_CORK, value ? 1 : 0); }
    /// <summary>TCP_QUICKACK: acknowledge at once instead of delaying ACKs. The kernel may leave quick-ack mode on its own; reading returns the current mode.</summary>
    public bool QuickAck { get => GetTcp(netinet_tcp.TCP_QUICKACK) != 0; set => SetTcp(netinet_tcp.TCP_QUICKACK, value ? 1 : 0); }

    /// <summary>SO_RCVBUF in bytes. The kernel doubles what is set (half is bookkeeping overhead), capped by net.core.rmem_max; reading returns the doubled value.</summary>
    public int ReceiveBufferSize { get => Sys.GetInt(Handle, sys_socket.SOL_SOCKET, sys_socket.SO_RCVBUF, $"SO_RCVBUF on {Subject}"); set => Sys.SetInt(Handle, sys_socket.SOL_SOCKET, sys_socket.SO_RCVBUF, Positive(value), $"SO_RCVBUF on {Subject}"); }
    /// <summary>SO_SNDBUF in bytes. The kernel doubles what is set, capped by net.core.wmem_max; reading returns the doubled value.</summary>
    public int SendBufferSize { get => Sys.GetInt(Handle, sys_socket.SOL_SOCKET, sys_socket.SO_SNDBUF, $"SO_SNDBUF on {Subject}"); set => Sys.SetInt(Handle, sys_socket.SOL_SOCKET, sys_socket.SO_SNDBUF, Positive(value), $"SO_SNDBUF on {Subject}"); }

    static int Positive(int v) => v > 0 ? v : throw new ArgumentOutOfRangeException(nameof(v), v, "A buffer size is a positive number of bytes.");

    /// <summary>Bytes received and not yet read (ioctl SIOCINQ): ss -tn prints it as Recv-Q.</summary>
    public int InQueue => Sys.Ioctl(Handle, sys_ioctl.SIOCINQ, "SIOCINQ", Subject);
    /// <summary>Bytes written and not yet acknowledged by the peer, sent or not (ioctl SIOCOUTQ): ss -tn prints it as Send-Q.</summary>
    public int OutQueue => Sys.Ioctl(Handle, sys_ioctl.SIOCOUTQ, "SIOCOUTQ", Subject);

    /// <summary>TCP_INFO for this connection.</summary>
    public TcpInfo Info() => TcpInfo.Read(Handle);
    /// <summary>The TCP state now (from TCP_INFO).</summary>
    public TcpState State => (TcpState)TcpInfo.ReadRaw(Handle, out _, Subject).tcpi_state;

    /// <summary>SO_RCVTIMEO: a blocking Read returns WouldBlock after this long without data. TimeSpan.Zero waits forever (the default).</summary>
    public void SetReceiveTimeout(TimeSpan timeout)
    {
        if (timeout < TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(timeout), timeout, "Use TimeSpan.Zero for no timeout, or a positive time.");
        Sys.SetTimeval(Handle, sys_socket.SO_RCVTIMEO, timeout, $"SO_RCVTIMEO on {Subject}");
    }

    /// <summary>SO_SNDTIMEO: a blocking Write into a full send queue returns WouldBlock after this long without room. TimeSpan.Zero waits forever (the default).</summary>
    public void SetSendTimeout(TimeSpan timeout)
    {
        if (timeout < TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(timeout), timeout, "Use TimeSpan.Zero for no timeout, or a positive time.");
        Sys.SetTimeval(Handle, sys_socket.SO_SNDTIMEO, timeout, $"SO_SNDTIMEO on {Subject}");
    }

    int GetTcp(int name) => Sys.GetInt(Handle, sys_socket.IPPROTO_TCP, name, $"TCP option {name} on {Subject}");
    void SetTcp(int name, int value) => Sys.SetInt(Handle, sys_socket.IPPROTO_TCP, name, value, $"TCP option {name} on {Subject}");

    /// <summary>Closes the socket (close(2)). Safe to call twice.</summary>
    public void Dispose()
    {
        Handle.Dispose();
        LabResources.Untrack(this);
    }

    /// <inheritdoc/>
    public override string ToString()
        => Handle.IsClosed ? "Connection (closed)" : $"Connection {Endpoints.Format(LocalEndPoint)} -> {Endpoints.Format(RemoteEndPoint)} ({Handle})";
}
