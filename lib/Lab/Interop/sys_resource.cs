// <sys/resource.h>: rlimits are per process; RLIMIT_NOFILE bounds the fd *numbers* a process may hold.
using System.Runtime.InteropServices;

#pragma warning disable CS8981 // C names on purpose: the interop mirrors the kernel headers

namespace Lab.Interop;

[StructLayout(LayoutKind.Sequential)]
public struct rlimit
{
    public ulong rlim_cur;
    public ulong rlim_max;
}

public static unsafe class sys_resource
{
    public const int RLIMIT_NOFILE = 7;

    [DllImport("libc", SetLastError = true)]
    public static extern int getrlimit(int resource, rlimit* rlim);

    [DllImport("libc", SetLastError = true)]
    public static extern int setrlimit(int resource, rlimit* rlim);
}
