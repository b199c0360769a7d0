using Lab.Sockets;
using System.Runtime.InteropServices;
using Lab.Interop;
using Tmds.Linux;
using static Tmds.Linux.LibC;

namespace Lab.Observe;

/// <summary>
/// A netlink socket's fd. Closed exactly once, by Dispose or the finalizer; raw calls run inside AddRef/Release so a
/// concurrent Dispose cannot close the fd under a call that is using it.
/// </summary>
internal sealed class NetlinkSocket : SafeHandle
{
    NetlinkSocket() : base(new IntPtr(-1), ownsHandle: true) { }

    public override bool IsInvalid => handle.ToInt64() < 0;

    protected override bool ReleaseHandle() => close((int)handle.ToInt64()) == 0;

    /// <summary>Opens a netlink socket for <paramref name="protocol"/> (NETLINK_SOCK_DIAG, NETLINK_ROUTE).</summary>
    public static unsafe NetlinkSocket Open(int protocol, TimeSpan receiveTimeout)
    {
        var s = new NetlinkSocket();
        int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol);
        if (fd < 0)
        {
            int e = Marshal.GetLastPInvokeError();
            throw new ObserveException($"socket(AF_NETLINK, {ProtocolName(protocol)}) failed: {ErrnoNames.NameAndText(e)}. " +
                (e == Lab.Interop.errno.EPROTONOSUPPORT ? "This kernel lacks the netlink family (sock_diag is built as module inet_diag/tcp_diag: try `modprobe tcp_diag`)." :
                 "Netlink sockets need no privilege; check the process's seccomp profile and fd limit."), e);
        }
        s.SetHandle(new IntPtr(fd));
        // Every receive is bounded: a kernel that never answers (it always does) cannot hang a notebook cell.
        long* tv = stackalloc long[2];
        tv[0] = (long)receiveTimeout.TotalSeconds;
        tv[1] = (long)(receiveTimeout.TotalMicroseconds % 1_000_000);
        if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, tv, 16) < 0)
        {
            int e = Marshal.GetLastPInvokeError();
            s.Dispose();
            throw new ObserveException($"setsockopt(SO_RCVTIMEO) on a netlink socket failed: {ErrnoNames.NameAndText(e)}", e);
        }
        return s;
    }

    public static string ProtocolName(int protocol) => protocol switch
    {
        netlink.NETLINK_SOCK_DIAG => "NETLINK_SOCK_DIAG",
        netlink.NETLINK_ROUTE => "NETLINK_ROUTE",
        _ => "netlink protocol " + protocol,
    };

    /// <summary>Sends one request to the kernel (nl_pid 0).</summary>
    public unsafe void SendToKernel(ReadOnlySpan<byte> message)
    {
        bool added = false;
        try
        {
            DangerousAddRef(ref added);
            int fd = (int)handle.ToInt64();
            var addr = new sockaddr_nl { nl_family = (ushort)AF_NETLINK };
            fixed (byte* p = message)
            {
                for (int attempt = 0; ; attempt++)
                {
                    long n = sendto(fd, p, (size_t)message.Length, 0, (sockaddr*)&addr, (socklen_t)sizeof(sockaddr_nl));
                    if (n == message.Length) return;
                    int e = Marshal.GetLastPInvokeError();
                    if (n < 0 && e == Lab.Interop.errno.EINTR && attempt < 3) continue;
                    throw new ObserveException($"sendto(netlink) failed: {(n < 0 ? ErrnoNames.NameAndText(e) : $"sent {n} of {message.Length} bytes")}", n < 0 ? e : 0);
                }
            }
        }
        finally { if (added) DangerousRelease(); }
    }

    /// <summary>Receives one datagram. Throws when it was larger than <paramref name="buffer"/> or nothing came in time.</summary>
    public unsafe int Receive(Span<byte> buffer)
    {
        bool added = false;
        try
        {
            DangerousAddRef(ref added);
            int fd = (int)handle.ToInt64();
            const int MSG_TRUNC = 0x20;
            fixed (byte* p = buffer)
            {
                for (int attempt = 0; ; attempt++)
                {
                    // MSG_TRUNC makes recv return the datagram's real length, so a short buffer is detected, not silent.
                    long n = recv(fd, p, (size_t)buffer.Length, MSG_TRUNC);
                    if (n >= 0)
                    {
                        if (n > buffer.Length)
                            throw new ObserveException($"A netlink reply of {n} bytes did not fit the {buffer.Length}-byte buffer.");
                        return (int)n;
                    }
                    int e = Marshal.GetLastPInvokeError();
                    if (e == Lab.Interop.errno.EINTR && attempt < 3) continue;
                    if (e == Lab.Interop.errno.EAGAIN)
                        throw new ObserveException("The kernel did not answer a netlink request within the receive timeout.", e);
                    throw new ObserveException($"recv(netlink) failed: {ErrnoNames.NameAndText(e)}" +
                        (e == Lab.Interop.errno.ENOBUFS ? " (the socket's receive buffer overflowed; the reading was lost, take it again)" : ""), e);
                }
            }
        }
        finally { if (added) DangerousRelease(); }
    }
}

/// <summary>Receives the messages of one netlink reply, struct by struct, with no allocation per message.</summary>
internal interface INetlinkVisitor
{
    /// <summary>One message of the reply: its type and its payload (after nlmsghdr).</summary>
    void Visit(ushort type, ReadOnlySpan<byte> payload);
}

/// <summary>
/// A netlink socket with its receive buffer and sequence numbers: send a dump request, walk the reply until NLMSG_DONE.
/// Not thread-safe: one reader at a time (callers lock or own one per thread).
/// </summary>
internal sealed class NetlinkChannel : IDisposable
{
    // The kernel sizes a dump's datagrams to the reader's buffer but never above 32 KiB (netlink_recvmsg caps
    // max_recvmsg_len), so 64 KiB always holds one.
    const int BufferSize = 64 * 1024;
    // Bounds one dump: a reply is at most a few thousand datagrams even on a busy host.
    const int MaxDatagrams = 1_000_000;

    readonly TimeSpan _receiveTimeout;
    NetlinkSocket _socket;
    bool _broken;
    readonly byte[] _buffer = GC.AllocateUninitializedArray<byte>(BufferSize, pinned: true);
    readonly int _protocol;
    uint _seq;

    public NetlinkChannel(int protocol, TimeSpan? receiveTimeout = null)
    {
        _protocol = protocol;
        _receiveTimeout = receiveTimeout ?? TimeSpan.FromSeconds(5);
        _socket = NetlinkSocket.Open(protocol, _receiveTimeout);
    }

    public bool IsClosed => _socket.IsClosed;

    public void Dispose() => _socket.Dispose();

    /// <summary>
    /// Sends <paramref name="request"/> (a whole message starting with nlmsghdr; its nlmsg_seq is overwritten) and
    /// passes each reply message with that sequence number to <paramref name="visitor"/> until NLMSG_DONE.
    /// </summary>
    public void Dump<TVisitor>(Span<byte> request, ref TVisitor visitor) where TVisitor : struct, INetlinkVisitor
    {
        if (_socket.IsClosed) throw new ObjectDisposedException(nameof(NetlinkChannel));
        if (_broken)
        {
            // A dump abandoned midway stays in progress in the kernel, which answers the next dump request on that
            // socket with EBUSY (netlink_dump_start): start again on a fresh socket.
            var fresh = NetlinkSocket.Open(_protocol, _receiveTimeout);
            _socket.Dispose();
            _socket = fresh;
            _broken = false;
        }
        try { DumpOnce(request, ref visitor); }
        catch (ObserveException e) when (e.Data.Contains(CompleteReply)) { throw; }
        catch { _broken = true; throw; }
    }

    // Marks failures that ended a reply cleanly (the kernel's NLMSG_ERROR / DONE error): the socket is still usable.
    const string CompleteReply = "netlink.complete";

    void DumpOnce<TVisitor>(Span<byte> request, ref TVisitor visitor) where TVisitor : struct, INetlinkVisitor
    {
        uint seq = unchecked(++_seq);
        if (seq == 0) seq = _seq = 1;
        MemoryMarshal.Write(request.Slice(8, 4), in seq);
        _socket.SendToKernel(request);

        int hdr = netlink.NLMSG_HDRLEN;
        for (int datagrams = 0; datagrams < MaxDatagrams; datagrams++)
        {
            int n = _socket.Receive(_buffer);
            var data = new ReadOnlySpan<byte>(_buffer, 0, n);
            int off = 0;
            while (off + hdr <= n)
            {
                var h = MemoryMarshal.Read<nlmsghdr>(data.Slice(off));
                if (h.nlmsg_len < hdr || off + h.nlmsg_len > n)
                    throw new ObserveException($"A malformed netlink message (nlmsg_len {h.nlmsg_len}) came from the kernel.");
                var payload = data.Slice(off + hdr, (int)h.nlmsg_len - hdr);
                off += netlink.NLMSG_ALIGN((int)h.nlmsg_len);
                // Leftovers of an earlier request that was abandoned mid-reply carry an older sequence number.
                if (h.nlmsg_seq != seq) continue;
                switch (h.nlmsg_type)
                {
                    case netlink.NLMSG_DONE:
                        // A dump's DONE carries the dump's return code; negative is an errno.
                        if (payload.Length >= 4 && MemoryMarshal.Read<int>(payload) < 0)
                            throw Failure(-MemoryMarshal.Read<int>(payload));
                        return;
                    case netlink.NLMSG_ERROR:
                        int err = payload.Length >= 4 ? MemoryMarshal.Read<int>(payload) : -Lab.Interop.errno.EIO;
                        if (err == 0) return; // an ACK
                        throw Failure(-err);
                    case netlink.NLMSG_NOOP:
                        continue;
                    case netlink.NLMSG_OVERRUN:
                        throw new ObserveException("The kernel reported a netlink overrun; the reading was lost, take it again.");
                    default:
                        visitor.Visit(h.nlmsg_type, payload);
                        break;
                }
            }
        }
        throw new ObserveException($"A netlink dump did not end after {MaxDatagrams} datagrams.");
    }

    ObserveException Failure(int e)
    {
        var x = Describe(e);
        x.Data[CompleteReply] = true;
        return x;
    }

    ObserveException Describe(int e) => new(
        $"The kernel refused a {NetlinkSocket.ProtocolName(_protocol)} request: {ErrnoNames.NameAndText(e)}" + e switch
        {
            Lab.Interop.errno.EINVAL => ". The request did not match what this kernel expects (a lab bug: please report the kernel version).",
            Lab.Interop.errno.ENOENT => ". Nothing matched.",
            Lab.Interop.errno.EPERM or Lab.Interop.errno.EACCES => ". This request needs CAP_NET_ADMIN: run as root or in the devcontainer with --cap-add NET_ADMIN.",
            _ => ".",
        }, e);
}
