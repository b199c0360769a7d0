// <linux/io_uring.h>: the structs and constants the lab's IoUring uses (Tmds.LibC 0.5.0 predates multishot accept,
// multishot receive and provided-buffer rings). StructLayoutTests proves each against the system header with gcc.
using System.Runtime.InteropServices;

#pragma warning disable CS8981 // C names on purpose: the interop mirrors the kernel headers
#pragma warning disable CS0649 // fields the kernel fills

namespace Lab.Interop;

/// <summary>struct io_sqring_offsets: where the submission ring's fields sit in its mmap.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct io_sqring_offsets
{
    public uint head, tail, ring_mask, ring_entries, flags, dropped, array, resv1;
    public ulong user_addr;
}

/// <summary>struct io_cqring_offsets: where the completion ring's fields sit in its mmap.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct io_cqring_offsets
{
    public uint head, tail, ring_mask, ring_entries, overflow, cqes, flags, resv1;
    public ulong user_addr;
}

/// <summary>struct io_uring_params: what io_uring_setup(2) is asked for and answers.</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct io_uring_params
{
    public uint sq_entries, cq_entries, flags, sq_thread_cpu, sq_thread_idle, features, wq_fd;
    public fixed uint resv[3];
    public io_sqring_offsets sq_off;
    public io_cqring_offsets cq_off;
}

/// <summary>struct io_uring_sqe (64 bytes): one submission. Unions are named by the member the lab uses.</summary>
[StructLayout(LayoutKind.Explicit, Size = 64)]
public struct io_uring_sqe
{
    [FieldOffset(0)] public byte opcode;
    [FieldOffset(1)] public byte flags;
    /// <summary>For accept and recv: IORING_ACCEPT_MULTISHOT / IORING_RECV_MULTISHOT.</summary>
    [FieldOffset(2)] public ushort ioprio;
    [FieldOffset(4)] public int fd;
    [FieldOffset(8)] public ulong off;
    [FieldOffset(16)] public ulong addr;
    [FieldOffset(24)] public uint len;
    /// <summary>The union of per-opcode flags (accept_flags, msg_flags, poll32_events, cancel_flags...).</summary>
    [FieldOffset(28)] public uint op_flags;
    [FieldOffset(32)] public ulong user_data;
    [FieldOffset(40)] public ushort buf_group;
    [FieldOffset(42)] public ushort personality;
    [FieldOffset(44)] public uint file_index;
    [FieldOffset(48)] public ulong addr3;
}

/// <summary>struct io_uring_cqe (16 bytes without IORING_SETUP_CQE32): one completion.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct io_uring_cqe
{
    public ulong user_data;
    public int res;
    public uint flags;
}

/// <summary>struct io_uring_buf: one entry of a provided-buffer ring (the first entry's resv holds the ring's tail).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct io_uring_buf
{
    public ulong addr;
    public uint len;
    public ushort bid;
    public ushort resv;
}

/// <summary>struct io_uring_buf_reg: the argument of IORING_REGISTER_PBUF_RING.</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct io_uring_buf_reg
{
    public ulong ring_addr;
    public uint ring_entries;
    public ushort bgid;
    public ushort flags;
    public fixed ulong resv[3];
}

/// <summary>struct io_uring_getevents_arg: io_uring_enter's argument with IORING_ENTER_EXT_ARG (a wait with a timeout).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct io_uring_getevents_arg
{
    public ulong sigmask;
    public uint sigmask_sz;
    public uint pad;
    public ulong ts;
}

/// <summary>struct __kernel_timespec.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct __kernel_timespec
{
    public long tv_sec;
    public long tv_nsec;
}

public static class io_uring
{
    // enum io_uring_op
    public const byte IORING_OP_NOP = 0;
    public const byte IORING_OP_POLL_ADD = 6;
    public const byte IORING_OP_ACCEPT = 13;
    public const byte IORING_OP_ASYNC_CANCEL = 14;
    public const byte IORING_OP_SEND = 26;
    public const byte IORING_OP_RECV = 27;

    // sqe->flags
    public const byte IOSQE_BUFFER_SELECT = 1 << 5;

    // sqe->ioprio for accept and recv, sqe->len for poll
    public const ushort IORING_ACCEPT_MULTISHOT = 1 << 0;
    public const ushort IORING_RECV_MULTISHOT = 1 << 1;
    public const uint IORING_POLL_ADD_MULTI = 1 << 0;
    public const uint IORING_ASYNC_CANCEL_ALL = 1 << 0;

    // cqe->flags
    public const uint IORING_CQE_F_BUFFER = 1 << 0;
    public const uint IORING_CQE_F_MORE = 1 << 1;
    public const int IORING_CQE_BUFFER_SHIFT = 16;

    // io_uring_setup flags and features
    public const uint IORING_SETUP_CQSIZE = 1 << 3;
    public const uint IORING_SETUP_SUBMIT_ALL = 1 << 7;
    public const uint IORING_SETUP_COOP_TASKRUN = 1 << 8;
    public const uint IORING_SETUP_SINGLE_ISSUER = 1 << 12;
    public const uint IORING_FEAT_SINGLE_MMAP = 1 << 0;
    public const uint IORING_FEAT_NODROP = 1 << 1;
    public const uint IORING_FEAT_FAST_POLL = 1 << 5;
    public const uint IORING_FEAT_EXT_ARG = 1 << 8;

    // mmap offsets
    public const long IORING_OFF_SQ_RING = 0;
    public const long IORING_OFF_CQ_RING = 0x8000000;
    public const long IORING_OFF_SQES = 0x10000000;

    // io_uring_enter flags
    public const uint IORING_ENTER_GETEVENTS = 1 << 0;
    public const uint IORING_ENTER_EXT_ARG = 1 << 3;

    // io_uring_register opcodes
    public const uint IORING_REGISTER_PBUF_RING = 22;
    public const uint IORING_UNREGISTER_PBUF_RING = 23;
}

/// <summary>The three io_uring system calls (by number: glibc has no wrappers) and the mmap they need.</summary>
public static unsafe class io_uring_sys
{
    // asm-generic numbers, the same on x86_64 and arm64.
    public const long SYS_io_uring_setup = 425;
    public const long SYS_io_uring_enter = 426;
    public const long SYS_io_uring_register = 427;

    [DllImport("libc", SetLastError = true)]
    static extern long syscall(long number, long a1, long a2, long a3, long a4, long a5, long a6);

    public static int io_uring_setup(uint entries, io_uring_params* p) => (int)syscall(SYS_io_uring_setup, entries, (long)p, 0, 0, 0, 0);

    public static int io_uring_enter(int fd, uint toSubmit, uint minComplete, uint flags, void* arg, nuint argSize) =>
        (int)syscall(SYS_io_uring_enter, fd, toSubmit, minComplete, flags, (long)arg, (long)argSize);

    public static int io_uring_register(int fd, uint opcode, void* arg, uint count) =>
        (int)syscall(SYS_io_uring_register, fd, opcode, (long)arg, count, 0, 0);

    public const int PROT_READ = 1, PROT_WRITE = 2;
    public const int MAP_SHARED = 0x01, MAP_PRIVATE = 0x02, MAP_ANONYMOUS = 0x20, MAP_POPULATE = 0x8000;

    [DllImport("libc", SetLastError = true)]
    public static extern void* mmap(void* addr, nuint length, int prot, int flags, int fd, long offset);

    [DllImport("libc", SetLastError = true)]
    public static extern int munmap(void* addr, nuint length);
}
