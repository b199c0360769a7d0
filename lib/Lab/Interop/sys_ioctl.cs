// <linux/sockios.h> / <asm-generic/ioctls.h>: the socket ioctls the lab reads queues with.
using System.Runtime.InteropServices;

#pragma warning disable CS8981 // C names on purpose: the interop mirrors the kernel headers

namespace Lab.Interop;

public static unsafe class sys_ioctl
{
    /// <summary>Bytes received and not yet read (same number as FIONREAD). For a TCP socket: rcv_nxt - copied_seq.</summary>
    public const int SIOCINQ = 0x541B;
    /// <summary>Bytes in the send queue not yet acknowledged by the peer (unsent + unacked): write_seq - snd_una.</summary>
    public const int SIOCOUTQ = 0x5411;
    /// <summary>Bytes in the send queue not yet sent (write_seq - snd_nxt).</summary>
    public const int SIOCOUTQNSD = 0x894B;
    /// <summary>The kernel's receive time of the last packet read, as a struct timespec (SIOCGSTAMPNS_OLD on 64-bit).</summary>
    public const int SIOCGSTAMPNS = 0x8907;

    /// <summary>ioctl(2) with a pointer argument (SIOCGSTAMPNS writes a struct timespec).</summary>
    [DllImport("libc", EntryPoint = "ioctl", SetLastError = true)]
    public static extern int ioctl_ptr(int fd, nuint request, void* arg);
}
