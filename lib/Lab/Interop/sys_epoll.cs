// <sys/epoll.h>: struct epoll_event is __attribute__((packed)) on x86_64 (12 bytes, data at offset 4: the kernel
// declares it with EPOLL_PACKED for x86_64 only) and naturally aligned elsewhere (16 bytes, data at offset 8).
using System.Runtime.InteropServices;

#pragma warning disable CS8981 // C names on purpose: the interop mirrors the kernel headers

namespace Lab.Interop;

/// <summary>struct epoll_event on x86_64 (packed, 12 bytes).</summary>
[StructLayout(LayoutKind.Sequential, Pack = 4)]
public struct epoll_event
{
    public uint events;
    public ulong data;
}

/// <summary>struct epoll_event on every other 64-bit architecture (arm64: 16 bytes, data at 8).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct epoll_event_aligned
{
    public uint events;
    public ulong data;
}

public static class sys_epoll
{
    public const int EPOLL_CLOEXEC = 0x80000;
    public const int EPOLL_CTL_ADD = 1;
    public const int EPOLL_CTL_DEL = 2;
    public const int EPOLL_CTL_MOD = 3;

    public const uint EPOLLIN = 0x001;
    public const uint EPOLLPRI = 0x002;
    public const uint EPOLLOUT = 0x004;
    public const uint EPOLLERR = 0x008;
    public const uint EPOLLHUP = 0x010;
    public const uint EPOLLRDHUP = 0x2000;
    public const uint EPOLLEXCLUSIVE = 1u << 28;
    public const uint EPOLLWAKEUP = 1u << 29;
    public const uint EPOLLONESHOT = 1u << 30;
    public const uint EPOLLET = 1u << 31;

    public const int EFD_SEMAPHORE = 1;
    public const int EFD_CLOEXEC = 0x80000;
    public const int EFD_NONBLOCK = 0x800;

}
