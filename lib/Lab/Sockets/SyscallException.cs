using System.Net;
using System.Runtime.InteropServices;
using static Lab.Interop.errno;

namespace Lab.Sockets;

/// <summary>
/// The one exception the lab throws for an errno it did not expect. It names the call, the errno and what it was
/// acting on, and carries a hint a learner can act on:
/// <c>bind(127.0.0.1:8080) failed: EADDRINUSE (Address already in use). Another socket is listening on this port: ...</c>
/// Outcomes a lesson expects (EAGAIN, ECONNABORTED on accept, ECONNRESET on read) are values, never this.
/// </summary>
public sealed class SyscallException : Exception
{
    /// <summary>The system call that failed, e.g. "bind".</summary>
    public string Syscall { get; }
    /// <summary>The errno it returned.</summary>
    public int Errno { get; }
    /// <summary>The errno's symbolic name, e.g. "EADDRINUSE".</summary>
    public string ErrnoName { get; }
    /// <summary>What the call acted on, e.g. "127.0.0.1:8080" or "fd 12"; may be empty.</summary>
    public string Subject { get; }
    /// <summary>What a learner can do about it (never empty).</summary>
    public string Hint { get; }

    public SyscallException(string syscall, int errno, string? subject = null, string? hint = null)
        : base(Format(syscall, errno, subject, hint))
    {
        Syscall = syscall;
        Errno = errno;
        ErrnoName = ErrnoNames.Name(errno);
        Subject = subject ?? "";
        Hint = string.IsNullOrWhiteSpace(hint) ? Hints.For(syscall, errno, null) : hint;
        HResult = errno;
    }

    static string Format(string syscall, int errno, string? subject, string? hint)
    {
        var h = string.IsNullOrWhiteSpace(hint) ? Hints.For(syscall, errno, null) : hint;
        return $"{syscall}({subject}) failed: {ErrnoNames.NameAndText(errno)}. {h}";
    }
}

/// <summary>errno numbers to their C names and strerror text.</summary>
public static class ErrnoNames
{
    static readonly Dictionary<int, string> Names = typeof(Lab.Interop.errno)
        .GetFields().Where(f => f.IsLiteral).ToDictionary(f => (int)f.GetRawConstantValue()!, f => f.Name);

    /// <summary>"EADDRINUSE" for 98; "errno 1234" for numbers the lab does not name.</summary>
    public static string Name(int errno) => Names.TryGetValue(errno, out var n) ? n : $"errno {errno}";

    /// <summary>strerror(3)'s text, e.g. "Address already in use".</summary>
    public static string Describe(int errno) => Marshal.GetPInvokeErrorMessage(errno);

    /// <summary>"EPERM (Operation not permitted)".</summary>
    public static string NameAndText(int errno) => $"{Name(errno)} ({Describe(errno)})";
}

/// <summary>What a learner can do about an errno, by call.</summary>
internal static class Hints
{
    public static string For(string syscall, int err, IPEndPoint? ep)
    {
        string port = ep is null ? "PORT" : ep.Port.ToString();
        bool binding = syscall == "bind";
        bool connecting = syscall == "connect";
        return err switch
        {
            EADDRINUSE when binding =>
                $"Another socket is bound to this port: pick another port, use port 0, or find the owner with `ss -ltnp 'sport = :{port}'` " +
                "(a listener that just closed may also leave TIME-WAIT sockets: set ListenerOptions.ReuseAddress).",
            EADDRINUSE =>
                "No free local port for this address (ephemeral ports exhausted?): check `sysctl net.ipv4.ip_local_port_range` and `ss -tan state time-wait | wc -l`.",
            EACCES when binding && ep is not null && ep.Port is > 0 and < 1024 =>
                $"Ports below 1024 (here {port}) need CAP_NET_BIND_SERVICE (run as root, or `setcap cap_net_bind_service=+ep`), " +
                "or lower `sysctl net.ipv4.ip_unprivileged_port_start`; simplest: use a port ≥ 1024 or port 0.",
            EACCES =>
                "Permission denied: a port below 1024 needs CAP_NET_BIND_SERVICE (use a port ≥ 1024), or a security module (AppArmor/SELinux) or firewall rule refused it.",
            EADDRNOTAVAIL when binding =>
                "That address is not on any interface of this host (or namespace): list addresses with `ip -br addr`, or bind 127.0.0.1 / 0.0.0.0.",
            EADDRNOTAVAIL =>
                "The address is not usable from here: check `ip -br addr` and `ip route get ADDRESS`; for loopback use 127.0.0.1 or ::1.",
            EPERM when syscall == "socket" =>
                "A capability is missing: raw sockets need CAP_NET_RAW (network configuration needs CAP_NET_ADMIN). Run as root, or in a container add --cap-add=NET_RAW / --cap-add=NET_ADMIN.",
            EPERM when connecting || syscall == "send" || syscall == "sendto" =>
                "A firewall rule (nftables/iptables OUTPUT) dropped the packet, or a capability (CAP_NET_RAW/CAP_NET_ADMIN) is missing: check `nft list ruleset`, run as root or --cap-add.",
            EPERM =>
                "Operation not permitted: a capability is missing (CAP_NET_RAW for raw sockets, CAP_NET_ADMIN for network settings, CAP_SYS_RESOURCE for limits). Run as root or add --cap-add.",
            EMFILE =>
                "This process hit its open-file limit (RLIMIT_NOFILE): check `ulimit -n` and `ls /proc/PID/fd | wc -l`; close connections you no longer need, dispose listeners, or raise the limit.",
            ENFILE =>
                "The whole system hit its open-file limit: check `cat /proc/sys/fs/file-nr` and `sysctl fs.file-max`; close what you no longer need.",
            ECONNREFUSED =>
                $"Nothing is listening there (the kernel answered the SYN with RST): start the listener first, check the port with `ss -ltn 'sport = :{port}'`.",
            ETIMEDOUT when connecting =>
                "No answer in time: the listener's accept queue may be full so its kernel drops SYNs (see `ss -ltn` Recv-Q vs Send-Q, `nstat -az TcpExtListenOverflows`), or a firewall drops packets.",
            ETIMEDOUT =>
                "The peer stopped answering (retransmissions or keepalives ran out): check the path and `ss -ti` for retransmits.",
            ECONNRESET =>
                "The peer reset the connection (RST): it closed with unread data, used SO_LINGER {1,0}, or crashed. Reconnect if you need to.",
            EPIPE =>
                "The connection is closed for writing (shut down or reset by the peer): stop writing, close it and reconnect.",
            EINVAL when syscall == "listen" =>
                "listen() needs a bound TCP socket that is not connected.",
            EINVAL when binding =>
                "The socket is already bound (bind once per socket), or the address family does not match the socket.",
            EINVAL when syscall.StartsWith("accept") =>
                "This socket is not listening (listen() was not called, or it was shut down).",
            EINVAL =>
                "The kernel rejected an argument: check the value and the socket's state (e.g. an option that only applies before listen/connect).",
            EAFNOSUPPORT =>
                "This address family is not available: IPv6 may be disabled (`sysctl net.ipv6.conf.all.disable_ipv6`, `ls /proc/net/if_inet6`). Use an IPv4 address such as 127.0.0.1.",
            ENETUNREACH or EHOSTUNREACH =>
                "No route to that address: check `ip route get ADDRESS`; the lab only talks to loopback (127.0.0.1, ::1) and its own namespaces.",
            ENOTCONN =>
                "The socket is not connected (never connected, or already reset): connect first or reconnect.",
            EISCONN =>
                "The socket is already connected: use a new socket for a new connection.",
            EALREADY or EINPROGRESS =>
                "A non-blocking connect is still in progress: wait for writability (poll/epoll EPOLLOUT), then read SO_ERROR.",
            EBADF =>
                "The descriptor is not open: it was closed (disposed) already.",
            ENOPROTOOPT or EOPNOTSUPP when syscall is "getsockopt" or "setsockopt" =>
                "This option does not apply to this kind of socket (e.g. a TCP option on a non-TCP socket) or this kernel.",
            EEXIST when syscall.StartsWith("epoll_ctl") =>
                "This fd is already registered with this epoll instance: use Modify, or Delete it first.",
            ENOENT when syscall.StartsWith("epoll_ctl") =>
                "This fd is not registered with this epoll instance: Add it first.",
            ENOBUFS or ENOMEM =>
                "The kernel is short of memory for sockets: check `cat /proc/net/sockstat` and `sysctl net.ipv4.tcp_mem`.",
            _ => $"See `man 2 {BaseName(syscall)}` (ERRORS) for what {ErrnoNames.Name(err)} means for this call.",
        };
    }

    static string BaseName(string syscall) { int i = syscall.IndexOf('('); return i < 0 ? syscall : syscall[..i]; }
}
