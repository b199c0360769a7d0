using System.Runtime.InteropServices;
using Lab.Interop;
using Tmds.Linux;
using static Lab.Interop.errno;

namespace Lab.Sockets;

/// <summary>epoll event bits (sys/epoll.h), with the kernel's values.</summary>
[Flags]
public enum EpollEvents : uint
{
    None = 0,
    /// <summary>EPOLLIN: readable (data, FIN, or a connection in a listener's accept queue).</summary>
    In = sys_epoll.EPOLLIN,
    /// <summary>EPOLLPRI: urgent data.</summary>
    Pri = sys_epoll.EPOLLPRI,
    /// <summary>EPOLLOUT: writable (room in the send buffer; a non-blocking connect finished).</summary>
    Out = sys_epoll.EPOLLOUT,
    /// <summary>EPOLLERR: an error is pending (always reported).</summary>
    Err = sys_epoll.EPOLLERR,
    /// <summary>EPOLLHUP: both directions closed, or reset (always reported).</summary>
    Hup = sys_epoll.EPOLLHUP,
    /// <summary>EPOLLRDHUP: the peer shut down its writing side (FIN received).</summary>
    RdHup = sys_epoll.EPOLLRDHUP,
    /// <summary>EPOLLEXCLUSIVE (Add only): of several epoll instances waiting on one fd, wake one or more, not all.</summary>
    Exclusive = sys_epoll.EPOLLEXCLUSIVE,
    /// <summary>EPOLLWAKEUP: hold a wakeup source while the event is pending (needs CAP_BLOCK_SUSPEND, else ignored).</summary>
    WakeUp = sys_epoll.EPOLLWAKEUP,
    /// <summary>EPOLLONESHOT: report once, then disarm until <see cref="Epoll.Modify"/> re-arms it.</summary>
    OneShot = sys_epoll.EPOLLONESHOT,
    /// <summary>EPOLLET: edge-triggered: report when readiness changes, not while it lasts.</summary>
    Et = sys_epoll.EPOLLET,
}

/// <summary>
/// One ready event. It holds the kernel's struct epoll_event itself (<see cref="Lab.Interop.epoll_event"/>, packed on
/// x86_64: 12 bytes, data at offset 4, as StructLayoutTests proves), so <see cref="Epoll.Wait"/> passes the caller's span
/// straight to epoll_wait(2).
/// </summary>
public struct EpollEvent
{
    Lab.Interop.epoll_event _kernel;

    public EpollEvent(EpollEvents events, ulong data) => _kernel = new Lab.Interop.epoll_event { events = (uint)events, data = data };

    /// <summary>What is ready.</summary>
    public readonly EpollEvents Events => (EpollEvents)_kernel.events;
    /// <summary>The value given to <see cref="Epoll.Add"/> for this fd.</summary>
    public readonly ulong Data => _kernel.data;

    public override readonly string ToString() => $"{Events} (data {Data})";
}

/// <summary>An epoll instance (epoll_create1 with EPOLL_CLOEXEC).</summary>
public sealed unsafe class Epoll : IDisposable
{
    // epoll_event is packed only on x86_64 (the kernel's EPOLL_PACKED); elsewhere Wait goes through an aligned copy.
    static readonly bool Packed = RuntimeInformation.ProcessArchitecture == Architecture.X64;
    const int AlignedChunk = 256;

    Epoll(Fd fd) { Handle = fd; LabResources.Track(this, "Epoll"); }

    /// <summary>The epoll instance's descriptor (itself pollable: it is readable when events are ready).</summary>
    public Fd Handle { get; }

    /// <summary>epoll_create1(EPOLL_CLOEXEC).</summary>
    public static Epoll Create()
    {
        int fd = LibC.epoll_create1(sys_epoll.EPOLL_CLOEXEC);
        if (fd < 0) throw Sys.Fail("epoll_create1", "EPOLL_CLOEXEC");
        return new Epoll(new Fd(fd));
    }

    /// <summary>EPOLL_CTL_ADD: watch <paramref name="fd"/> for <paramref name="events"/>; <paramref name="data"/> comes back with each event.</summary>
    public void Add(SafeHandle fd, EpollEvents events, ulong data) => Ctl(sys_epoll.EPOLL_CTL_ADD, "epoll_ctl(ADD)", fd, events, data);

    /// <summary>EPOLL_CTL_MOD: change what is watched (and re-arm an EPOLLONESHOT registration).</summary>
    public void Modify(SafeHandle fd, EpollEvents events, ulong data)
    {
        if ((events & EpollEvents.Exclusive) != 0)
            throw new ArgumentException("EPOLLEXCLUSIVE can only be given to Add (the kernel refuses it in EPOLL_CTL_MOD with EINVAL). Delete and Add again to change it.", nameof(events));
        Ctl(sys_epoll.EPOLL_CTL_MOD, "epoll_ctl(MOD)", fd, events, data);
    }

    /// <summary>EPOLL_CTL_DEL: stop watching <paramref name="fd"/>.</summary>
    public void Delete(SafeHandle fd) => Ctl(sys_epoll.EPOLL_CTL_DEL, "epoll_ctl(DEL)", fd, 0, 0);

    void Ctl(int op, string name, SafeHandle fd, EpollEvents events, ulong data)
    {
        ArgumentNullException.ThrowIfNull(fd);
        if (fd.IsClosed || fd.IsInvalid) throw new ObjectDisposedException(nameof(fd), $"{name}: the fd to watch is already closed; register an open socket.");
        var ev = new Lab.Interop.epoll_event { events = (uint)events, data = data };
        var al = new epoll_event_aligned { events = (uint)events, data = data };
        using var ep = Sys.Borrow(Handle);
        using var target = Sys.Borrow(fd);
        int r = LibC.epoll_ctl(ep.Fd, op, target.Fd, Packed ? (Tmds.Linux.epoll_event*)&ev : (Tmds.Linux.epoll_event*)&al);
        if (r != 0) throw Sys.Fail(name, $"epoll {ep.Fd}, fd {target.Fd}, {events}");
    }

    /// <summary>
    /// epoll_wait(2) into <paramref name="events"/>: the number of ready events (0 when <paramref name="timeoutMs"/>
    /// ran out; -1 waits without limit). EINTR is retried with the time left. Allocation-free.
    /// </summary>
    public int Wait(Span<EpollEvent> events, int timeoutMs)
    {
        if (events.IsEmpty) throw new ArgumentException("Give Wait room for at least one event (e.g. stackalloc EpollEvent[64]).", nameof(events));
        if (timeoutMs < -1) throw new ArgumentOutOfRangeException(nameof(timeoutMs), timeoutMs, "Use -1 to wait without limit, 0 to poll, or a positive number of milliseconds.");
        long deadline = timeoutMs < 0 ? long.MaxValue : Environment.TickCount64 + timeoutMs;
        using var ep = Sys.Borrow(Handle);
        var buf = stackalloc epoll_event_aligned[Packed ? 0 : Math.Min(events.Length, AlignedChunk)];
        while (true)
        {
            int n;
            if (Packed)
            {
                fixed (EpollEvent* p = events)
                    n = LibC.epoll_wait(ep.Fd, (Tmds.Linux.epoll_event*)p, events.Length, timeoutMs);
            }
            else
            {
                n = LibC.epoll_wait(ep.Fd, (Tmds.Linux.epoll_event*)buf, Math.Min(events.Length, AlignedChunk), timeoutMs);
                for (int i = 0; i < n; i++) events[i] = new EpollEvent((EpollEvents)buf[i].events, buf[i].data);
            }
            if (n >= 0) return n;
            if (Sys.Errno != EINTR) throw Sys.Fail("epoll_wait", $"epoll {ep.Fd}");
            if (timeoutMs > 0) timeoutMs = (int)Math.Max(0, deadline - Environment.TickCount64);
        }
    }

    /// <summary>Closes the epoll instance. Safe to call twice.</summary>
    public void Dispose()
    {
        Handle.Dispose();
        LabResources.Untrack(this);
    }

    public override string ToString() => $"Epoll ({Handle})";
}

/// <summary>
/// An eventfd(2) counter (non-blocking, close-on-exec): <see cref="Signal"/> adds to it and makes it readable,
/// which wakes an epoll_wait watching it for EPOLLIN; <see cref="Drain"/> reads it back to zero.
/// </summary>
public sealed unsafe class EventFd : IDisposable
{
    EventFd(Fd fd) { Handle = fd; LabResources.Track(this, "EventFd"); }

    /// <summary>The eventfd's descriptor (register it with <see cref="Epoll.Add"/> for <see cref="EpollEvents.In"/>).</summary>
    public Fd Handle { get; }

    /// <summary>eventfd(initial, EFD_NONBLOCK | EFD_CLOEXEC [| EFD_SEMAPHORE]).</summary>
    public static EventFd Create(uint initial = 0, bool semaphore = false)
    {
        int fd = LibC.eventfd(initial, sys_epoll.EFD_NONBLOCK | sys_epoll.EFD_CLOEXEC | (semaphore ? sys_epoll.EFD_SEMAPHORE : 0));
        if (fd < 0) throw Sys.Fail("eventfd", "EFD_NONBLOCK|EFD_CLOEXEC");
        return new EventFd(new Fd(fd));
    }

    /// <summary>Adds <paramref name="count"/> (default 1) to the counter. Returns false if the counter is full (EAGAIN, about 2^64).</summary>
    public bool Signal(ulong count = 1)
    {
        if (count == 0 || count == ulong.MaxValue) throw new ArgumentOutOfRangeException(nameof(count), count, "Signal adds 1 to 2^64-2.");
        long n;
        using var b = Sys.Borrow(Handle);
        do n = LibC.write(b.Fd, &count, sizeof(ulong));
        while (Sys.Interrupted(n));
        if (n == sizeof(ulong)) return true;
        if (Sys.Errno == EAGAIN) return false;
        throw Sys.Fail("write", $"eventfd {b.Fd}");
    }

    /// <summary>Reads the counter and resets it (a semaphore eventfd gives 1 per read): 0 if nothing was signalled.</summary>
    public ulong Drain()
    {
        ulong value = 0;
        long n;
        using var b = Sys.Borrow(Handle);
        do n = LibC.read(b.Fd, &value, sizeof(ulong));
        while (Sys.Interrupted(n));
        if (n == sizeof(ulong)) return value;
        if (Sys.Errno == EAGAIN) return 0;
        throw Sys.Fail("read", $"eventfd {b.Fd}");
    }

    /// <summary>Closes the eventfd. Safe to call twice.</summary>
    public void Dispose()
    {
        Handle.Dispose();
        LabResources.Untrack(this);
    }
}
