using System.Net;
using System.Runtime.InteropServices;
using Lab.Interop;
using Tmds.Linux;
using static Lab.Interop.errno;

namespace Lab.Sockets;

/// <summary>The few helpers every raw call goes through: borrowing an fd, the EINTR retry, the errno mapper.</summary>
internal static unsafe class Sys
{
    /// <summary>errno of the last P/Invoke on this thread (Tmds.LibC imports with SetLastError).</summary>
    public static int Errno => Marshal.GetLastPInvokeError();

    /// <summary>The one EINTR retry: <c>do r = call(); while (Sys.Interrupted(r));</c></summary>
    public static bool Interrupted(long result) => result == -1 && Errno == EINTR;

    /// <summary>Holds a reference on <paramref name="handle"/> for one raw call; ObjectDisposedException once it is closed.</summary>
    public static Borrowed Borrow(SafeHandle handle)
    {
        bool added = false;
        handle.DangerousAddRef(ref added);
        return new Borrowed(handle, (int)handle.DangerousGetHandle().ToInt64());
    }

    public readonly ref struct Borrowed
    {
        readonly SafeHandle _handle;
        public readonly int Fd;
        public Borrowed(SafeHandle handle, int fd) { _handle = handle; Fd = fd; }
        public void Dispose() => _handle.DangerousRelease();
    }

    /// <summary>The errno mapper: an unexpected errno becomes the lab's one exception type.</summary>
    public static SyscallException Fail(string syscall, string? subject, int err, IPEndPoint? endpoint = null)
        => new(syscall, err, subject, Hints.For(syscall, err, endpoint));

    public static SyscallException Fail(string syscall, string? subject, IPEndPoint? endpoint = null)
        => Fail(syscall, subject, Errno, endpoint);

    public static void SetInt(SafeHandle fd, int level, int name, int value, string what)
    {
        using var b = Borrow(fd);
        if (LibC.setsockopt(b.Fd, level, name, &value, sizeof(int)) != 0) throw Fail("setsockopt", what);
    }

    public static int GetInt(SafeHandle fd, int level, int name, string what)
    {
        int value = 0;
        socklen_t len = sizeof(int);
        using var b = Borrow(fd);
        if (LibC.getsockopt(b.Fd, level, name, &value, &len) != 0) throw Fail("getsockopt", what);
        return value;
    }

    public static void SetTimeval(SafeHandle fd, int name, TimeSpan value, string what)
    {
        long us = Math.Max(0, (long)(value.Ticks / 10));
        var tv = new timeval { tv_sec = us / 1_000_000, tv_usec = us % 1_000_000 };
        using var b = Borrow(fd);
        if (LibC.setsockopt(b.Fd, sys_socket.SOL_SOCKET, name, &tv, (socklen_t)sizeof(timeval)) != 0) throw Fail("setsockopt", what);
    }

    /// <summary>poll(2) one fd, retrying EINTR with the time left. Returns revents (0 on timeout).</summary>
    public static short Poll(SafeHandle fd, short events, int timeoutMs, string what)
    {
        long deadline = timeoutMs < 0 ? long.MaxValue : Environment.TickCount64 + timeoutMs;
        using var b = Borrow(fd);
        while (true)
        {
            var p = new pollfd { fd = b.Fd, events = events };
            int r = sys_poll.poll(&p, 1, timeoutMs); // not Tmds.LibC's poll: it leaves errno unrecorded (see sys_poll)
            if (r >= 0) return r == 0 ? (short)0 : p.revents;
            if (Errno != EINTR) throw Fail("poll", what);
            if (timeoutMs >= 0) timeoutMs = (int)Math.Max(0, deadline - Environment.TickCount64);
        }
    }

    public static int Ioctl(SafeHandle fd, int request, string name, string what)
    {
        int value = 0;
        using var b = Borrow(fd);
        if (LibC.ioctl(b.Fd, request, &value) != 0) throw Fail($"ioctl({name})", what);
        return value;
    }

    public const short POLLIN_ERR_HUP = 0x001 | 0x008 | 0x010;
    public const short POLLOUT_ERR_HUP = 0x004 | 0x008 | 0x010;

    public static int Milliseconds(TimeSpan t) => t == Timeout.InfiniteTimeSpan ? -1 : (int)Math.Clamp(Math.Ceiling(t.TotalMilliseconds), 0, int.MaxValue);
}
