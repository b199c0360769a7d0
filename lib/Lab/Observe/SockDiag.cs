using Lab.Sockets;
using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Lab.Interop;

namespace Lab.Observe;

/// <summary>
/// Reads the kernel's TCP socket table over netlink NETLINK_SOCK_DIAG (SOCK_DIAG_BY_FAMILY dumps of
/// inet_diag_req_v2), the interface `ss` uses. <see cref="Query"/> opens a socket per call; a caller reading
/// often (a sampler) keeps one <see cref="SockDiag"/> from <see cref="Open"/>, which reuses one netlink socket
/// and its buffers. An instance is safe to share between threads (calls are serialized).
/// </summary>
public sealed class SockDiag : IDisposable
{
    const byte IPPROTO_TCP = 6;
    static readonly int ReqLen = Marshal.SizeOf<inet_diag_req_v2>();
    static readonly int MsgLen = Marshal.SizeOf<inet_diag_msg>();

    readonly NetlinkChannel _channel;
    readonly object _gate = new();
    readonly bool _tracked;
    // nlmsghdr + inet_diag_req_v2 + room for one bytecode attribute: rebuilt in place, no allocation per dump.
    readonly byte[] _request = new byte[256];
    int _disposed;
    bool _compatRefused;

    SockDiag(bool track)
    {
        _channel = new NetlinkChannel(netlink.NETLINK_SOCK_DIAG);
        _tracked = track;
        if (track) LabResources.Track(this, "SockDiag");
    }

    /// <summary>Opens a reusable reader (one netlink socket). Dispose it; it is tracked in <see cref="LabResources"/>.</summary>
    public static SockDiag Open() => new(track: true);

    /// <summary>A reader owned by another tracked lab object (which disposes it).</summary>
    internal static SockDiag OpenUntracked() => new(track: false);

    /// <summary>One query on a netlink socket of its own: every TCP socket matching <paramref name="filter"/>.</summary>
    public static IReadOnlyList<SocketRow> Query(SocketFilter? filter = null)
    {
        using var d = new SockDiag(track: false);
        return d.Read(filter);
    }

    /// <summary>Every TCP socket matching <paramref name="filter"/> (defaults to all).</summary>
    public IReadOnlyList<SocketRow> Read(SocketFilter? filter = null)
    {
        filter ??= SocketFilter.All;
        filter.Validate();
        var states = filter.States ?? TcpSocketStates.All;
        uint mask = TcpSocketStates.ToKernelMask(states);
        var rows = new RowCollector { Rows = new List<SocketRow>(), States = states };
        if (mask == 0) return rows.Rows;
        Dump(filter.Family ?? AddressFamily.Unspecified, mask, filter.LocalPort ?? 0, filter.RemotePort ?? 0, filter.AnyPort ?? -1, ref rows);
        return rows.Rows;
    }

    /// <summary>
    /// One dump. <paramref name="family"/> Unspecified reads both families in one walk of the kernel's tables (the
    /// original TCPDIAG_GETSOCK request, which the kernel runs with AF_UNSPEC), falling back to one
    /// SOCK_DIAG_BY_FAMILY dump per family if this kernel refuses it. Ports are host order; 0 means any;
    /// <paramref name="anyPort"/> -1 means no bytecode.
    /// </summary>
    /// <remarks>
    /// Cost, measured on this lab's VM (tcp_ehash_entries 262144): a dump of LISTEN sockets only walks the listen
    /// hash (≈15 µs); any other state makes the kernel walk every bucket of the established hash (≈1 ms per walk),
    /// whatever the port filter. So one walk for both families instead of two halves the cost.
    /// </remarks>
    internal void Dump<TVisitor>(AddressFamily family, uint states, int localPort, int remotePort, int anyPort, ref TVisitor visitor)
        where TVisitor : struct, IDiagRowVisitor
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed != 0, this);
            if (family == AddressFamily.Unspecified && !_compatRefused)
            {
                var snapshot = visitor;
                try
                {
                    DumpOne(AddressFamily.Unspecified, states, localPort, remotePort, anyPort, ref visitor);
                    return;
                }
                catch (ObserveException e) when (e.Errno is errno.EINVAL or errno.EOPNOTSUPP or errno.ENOENT or errno.EPROTONOSUPPORT)
                {
                    _compatRefused = true;
                    visitor = snapshot;
                }
            }
            if (family == AddressFamily.Unspecified)
            {
                DumpOne(AddressFamily.InterNetwork, states, localPort, remotePort, anyPort, ref visitor);
                DumpOne(AddressFamily.InterNetworkV6, states, localPort, remotePort, anyPort, ref visitor);
            }
            else DumpOne(family, states, localPort, remotePort, anyPort, ref visitor);
        }
    }

    void DumpOne<TVisitor>(AddressFamily family, uint states, int localPort, int remotePort, int anyPort, ref TVisitor visitor)
        where TVisitor : struct, IDiagRowVisitor
    {
        int len = BuildRequest(_request, family, states, localPort, remotePort, anyPort);
        var v = new DiagMessageVisitor<TVisitor> { Inner = visitor };
        try { _channel.Dump(_request.AsSpan(0, len), ref v); }
        finally { visitor = v.Inner; }
    }

    static int BuildRequest(Span<byte> buf, AddressFamily family, uint states, int localPort, int remotePort, int anyPort)
    {
        buf.Clear();
        int hdr = netlink.NLMSG_HDRLEN;
        var id = new inet_diag_sockid
        {
            // The kernel compares these with the socket's ports before any bytecode: the cheapest filter there is.
            idiag_sport = BinaryPrimitives.ReverseEndianness((ushort)localPort),
            idiag_dport = BinaryPrimitives.ReverseEndianness((ushort)remotePort),
        };
        unsafe
        {
            id.idiag_cookie[0] = inet_diag.INET_DIAG_NOCOOKIE;
            id.idiag_cookie[1] = inet_diag.INET_DIAG_NOCOOKIE;
        }
        int len;
        ushort type;
        if (family == AddressFamily.Unspecified)
        {
            var req = new inet_diag_req { idiag_states = states, id = id };
            MemoryMarshal.Write(buf.Slice(hdr), in req);
            len = hdr + netlink.NLMSG_ALIGN(Marshal.SizeOf<inet_diag_req>());
            type = inet_diag.TCPDIAG_GETSOCK;
        }
        else
        {
            var req = new inet_diag_req_v2
            {
                sdiag_family = (byte)(family == AddressFamily.InterNetworkV6 ? 10 : 2),
                sdiag_protocol = IPPROTO_TCP,
                idiag_states = states,
                id = id,
            };
            MemoryMarshal.Write(buf.Slice(hdr), in req);
            len = hdr + netlink.NLMSG_ALIGN(ReqLen);
            type = sock_diag.SOCK_DIAG_BY_FAMILY;
        }
        if (anyPort >= 0) len += WritePortBytecode(buf.Slice(len), (ushort)anyPort);
        var h = new nlmsghdr
        {
            nlmsg_len = (uint)len,
            nlmsg_type = type,
            nlmsg_flags = netlink.NLM_F_REQUEST | netlink.NLM_F_DUMP,
        };
        MemoryMarshal.Write(buf, in h);
        return len;
    }

    /// <summary>
    /// An INET_DIAG_REQ_BYTECODE attribute for "sport == P or dport == P". Each op jumps forward by yes/no bytes;
    /// the kernel accepts a socket when the program ends exactly at its end, rejects when a jump goes past it.
    /// <code>
    ///  0: S_EQ  yes 8 no 12   4: (port)   sport == P ? go to 8 : go to 12
    ///  8: JMP   yes 4 no 12               go to 20 (the end: accept)
    /// 12: D_EQ  yes 8 no 12  16: (port)   dport == P ? go to 20 (accept) : go to 24 (past the end: reject)
    /// </code>
    /// </summary>
    static int WritePortBytecode(Span<byte> buf, ushort port)
    {
        const int code = 20;
        int attrLen = netlink.NLA_HDRLEN + code;
        MemoryMarshal.Write(buf, new nlattr { nla_len = (ushort)attrLen, nla_type = inet_diag.INET_DIAG_REQ_BYTECODE });
        var ops = MemoryMarshal.Cast<byte, inet_diag_bc_op>(buf.Slice(netlink.NLA_HDRLEN, code));
        ops[0] = new inet_diag_bc_op { code = inet_diag.INET_DIAG_BC_S_EQ, yes = 8, no = 12 };
        ops[1] = new inet_diag_bc_op { no = port };
        ops[2] = new inet_diag_bc_op { code = inet_diag.INET_DIAG_BC_JMP, yes = 4, no = 12 };
        ops[3] = new inet_diag_bc_op { code = inet_diag.INET_DIAG_BC_D_EQ, yes = 8, no = 12 };
        ops[4] = new inet_diag_bc_op { no = port };
        return netlink.NLA_ALIGN(attrLen);
    }

    /// <summary>Builds a row from one inet_diag_msg (allocates the row and its endpoints).</summary>
    internal static unsafe SocketRow ToRow(in inet_diag_msg m, TcpState state)
    {
        bool v6 = m.idiag_family == 10;
        IPAddress local, remote;
        fixed (uint* src = m.id.idiag_src, dst = m.id.idiag_dst)
        {
            local = new IPAddress(new ReadOnlySpan<byte>(src, v6 ? 16 : 4));
            remote = new IPAddress(new ReadOnlySpan<byte>(dst, v6 ? 16 : 4));
        }
        ulong cookie;
        fixed (uint* c = m.id.idiag_cookie) cookie = c[0] | ((ulong)c[1] << 32);
        return new SocketRow(state, m.idiag_rqueue, m.idiag_wqueue,
            new IPEndPoint(local, BinaryPrimitives.ReverseEndianness(m.id.idiag_sport)),
            new IPEndPoint(remote, BinaryPrimitives.ReverseEndianness(m.id.idiag_dport)),
            m.idiag_inode, m.idiag_uid, cookie, (int)m.id.idiag_if)
        {
            Timer = m.idiag_timer,
            Retransmits = m.idiag_retrans,
            Expires = TimeSpan.FromMilliseconds(m.idiag_expires),
        };
    }

    /// <summary>
    /// The state a row is in. Request sockets come back with idiag_state TCP_SYN_RECV (tcp_req_diag_fill) and without
    /// the INET_DIAG_SHUTDOWN attribute that inet_diag_msg_attrs_fill puts on every full socket: that absence is how
    /// the lab tells a SYN-queue entry (<see cref="TcpState.NewSynRecv"/>) from a full SYN_RECV socket.
    /// </summary>
    internal static TcpState StateOf(byte idiagState, bool fullSocket) =>
        idiagState == (byte)TcpState.SynRecv && !fullSocket ? TcpState.NewSynRecv : (TcpState)idiagState;

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        lock (_gate) _channel.Dispose();
        if (_tracked) LabResources.Untrack(this);
    }

    /// <summary>Parses each SOCK_DIAG_BY_FAMILY reply message and hands the row to the inner visitor.</summary>
    struct DiagMessageVisitor<T> : INetlinkVisitor where T : struct, IDiagRowVisitor
    {
        public T Inner;

        public void Visit(ushort type, ReadOnlySpan<byte> payload)
        {
            // Replies carry the request's type: SOCK_DIAG_BY_FAMILY, or TCPDIAG_GETSOCK for the one-walk request.
            if (type is not (sock_diag.SOCK_DIAG_BY_FAMILY or inet_diag.TCPDIAG_GETSOCK) || payload.Length < MsgLen) return;
            var m = MemoryMarshal.Read<inet_diag_msg>(payload);
            bool full = false;
            int off = netlink.NLMSG_ALIGN(MsgLen);
            while (off + netlink.NLA_HDRLEN <= payload.Length)
            {
                var a = MemoryMarshal.Read<nlattr>(payload.Slice(off));
                if (a.nla_len < netlink.NLA_HDRLEN) break;
                if ((a.nla_type & 0x3FFF) == inet_diag.INET_DIAG_SHUTDOWN) { full = true; break; }
                off += netlink.NLA_ALIGN(a.nla_len);
            }
            Inner.Row(in m, StateOf(m.idiag_state, full));
        }
    }

    struct RowCollector : IDiagRowVisitor
    {
        public List<SocketRow> Rows;
        public IReadOnlySet<TcpState> States;

        public void Row(in inet_diag_msg msg, TcpState state)
        {
            // The kernel widens bit 3 to request sockets and reports bound-inactive sockets as CLOSE: filter again.
            if (States.Contains(state) || (state == TcpState.Close && States.Contains(TcpState.BoundInactive)))
                Rows.Add(ToRow(in msg, state));
        }
    }
}

/// <summary>Receives each socket of a dump without allocating (used by readers that only count).</summary>
internal interface IDiagRowVisitor
{
    void Row(in inet_diag_msg msg, TcpState state);
}
