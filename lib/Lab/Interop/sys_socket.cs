// <sys/socket.h>, <bits/types/struct_timeval.h>, <netinet/in.h>: the socket structs the lab marshals itself,
// with public fields so a layout test can compare every offset with gcc's.
using System.Runtime.InteropServices;

#pragma warning disable CS8981 // C names on purpose: the interop mirrors the kernel headers

namespace Lab.Interop;

/// <summary>struct linger: SO_LINGER's value. {1, 0} makes close(2) send RST instead of FIN.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct linger
{
    public int l_onoff;
    public int l_linger;
}

/// <summary>struct timeval: SO_RCVTIMEO / SO_SNDTIMEO's value (x86_64/arm64: two 64-bit longs).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct timeval
{
    public long tv_sec;
    public long tv_usec;
}

/// <summary>struct sockaddr_in (16 bytes). Port and address are in network byte order.</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct sockaddr_in
{
    public ushort sin_family;
    public ushort sin_port;
    public uint sin_addr;
    public fixed byte sin_zero[8];
}

/// <summary>
/// sockaddr_in or sockaddr_in6 in one buffer big enough for either (28 bytes), the family first in both: what accept4,
/// getsockname and getpeername fill for a TCP socket. glibc has no such type; systemd calls its own union sockaddr_union.
/// </summary>
[StructLayout(LayoutKind.Explicit, Size = 28)]
public struct sockaddr_union
{
    [FieldOffset(0)] public ushort sa_family;
    [FieldOffset(0)] public sockaddr_in in4;
    [FieldOffset(0)] public sockaddr_in6 in6;
}

/// <summary>struct sockaddr_in6 (28 bytes). Port and flowinfo in network byte order.</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct sockaddr_in6
{
    public ushort sin6_family;
    public ushort sin6_port;
    public uint sin6_flowinfo;
    public fixed byte sin6_addr[16];
    public uint sin6_scope_id;
}

public static class sys_socket
{
    public const int SOL_SOCKET = 1;
    public const int SO_REUSEADDR = 2;
    public const int SO_TYPE = 3;
    public const int SO_ERROR = 4;
    public const int SO_SNDBUF = 7;
    public const int SO_RCVBUF = 8;
    /// <summary>SO_RCVBUF beyond net.core.rmem_max (needs CAP_NET_ADMIN).</summary>
    public const int SO_RCVBUFFORCE = 33;
    public const int SO_KEEPALIVE = 9;
    public const int SO_LINGER = 13;
    public const int SO_REUSEPORT = 15;
    public const int SO_RCVTIMEO = 20; // SO_RCVTIMEO_OLD on 64-bit: struct timeval with 64-bit fields
    public const int SO_SNDTIMEO = 21;
    public const int SO_ACCEPTCONN = 30;
    public const int SO_DOMAIN = 39;
    public const int SO_INCOMING_CPU = 49;

    public const int AF_INET = 2;
    public const int AF_INET6 = 10;
    public const int SOCK_STREAM = 1;
    public const int SOCK_RAW = 3;
    public const int SOCK_NONBLOCK = 0x800;
    public const int SOCK_CLOEXEC = 0x80000;

    public const int IPPROTO_IP = 0;
    public const int IPPROTO_TCP = 6;
    public const int IPPROTO_IPV6 = 41;
    public const int IPPROTO_RAW = 255;
    public const int IPV6_V6ONLY = 26;
    public const int IP_HDRINCL = 3;

    public const int SHUT_RD = 0;
    public const int SHUT_WR = 1;
    public const int SHUT_RDWR = 2;

    public const int MSG_DONTWAIT = 0x40;
    public const int MSG_NOSIGNAL = 0x4000;
}
