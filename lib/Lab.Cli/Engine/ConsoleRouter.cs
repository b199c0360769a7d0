using System.Text;

namespace Lab.Cli.Engine;

/// <summary>
/// Where a running cell's Console output goes. The sink flows with the cell's ExecutionContext, so threads and
/// tasks a cell starts write into that cell; once it has ended they write into whichever cell of the same
/// engine is running, or the engine's stray-output handler when none is.
/// </summary>
sealed class CellSink
{
    internal static readonly AsyncLocal<CellSink?> Current = new();

    public CellSink(NotebookEngine engine, CellContext ctx) { Engine = engine; Context = ctx; }
    public NotebookEngine Engine { get; }
    public CellContext Context { get; }
    public volatile bool Closed;

    /// <summary>The sink output should go to now: this one while open, else the engine's running cell, else null.</summary>
    public CellSink? Live => !Closed ? this : Engine.RunningSink is { Closed: false } running ? running : null;
}

/// <summary>
/// Console.Out / Console.Error / Console.In replaced by writers and a reader that route by <see cref="CellSink.Current"/>.
/// <para>
/// The BCL drops a reader installed with Console.SetIn whenever Console.InputEncoding is set (the next Console.In is a
/// fresh reader over the real stdin), and drops Console.Out/Error on Console.OutputEncoding when they are a terminal.
/// Libraries do that in-process (Playwright sets InputEncoding while it starts its driver; Spectre.Console and xunit set
/// OutputEncoding), and so may a cell. So the engine calls <see cref="Install"/> before every cell: whatever is in
/// Console.In/Out/Error then and is not ours becomes the "real" stream behind a fresh router.
/// </para>
/// </summary>
static class ConsoleRouter
{
    static readonly object Gate = new();
    static TextWriter? _realOut, _realErr;
    static TextReader? _realIn;
    // What Console.In/Out/Error returned right after we installed (the BCL's synchronized wrappers of ours).
    static TextReader? _installedIn;
    static TextWriter? _installedOut, _installedErr;

    public static TextWriter RealOut => _realOut ?? Console.Out;
    public static TextWriter RealError => _realErr ?? Console.Error;
    internal static TextReader RealIn => _realIn ?? Console.In;

    /// <summary>Routes Console.In/Out/Error through the cell sinks, again if something replaced or reset them. Cheap when nothing changed.</summary>
    public static void Install()
    {
        lock (Gate)
        {
            var @out = Console.Out;
            if (!ReferenceEquals(@out, _installedOut))
            {
                _realOut = @out;
                Console.SetOut(new RoutedWriter(@out, stderr: false));
                _installedOut = Console.Out;
            }
            var err = Console.Error;
            if (!ReferenceEquals(err, _installedErr))
            {
                _realErr = err;
                Console.SetError(new RoutedWriter(err, stderr: true));
                _installedErr = Console.Error;
            }
            var @in = Console.In;
            if (!ReferenceEquals(@in, _installedIn))
            {
                _realIn = @in;
                Console.SetIn(new RoutedReader(@in));
                _installedIn = Console.In;
            }
        }
    }

    // Each router keeps the real stream it was made over: a writer that forwards to an older router (saved before
    // a re-install) then ends at that router's own real stream, never back at the newest one.
    sealed class RoutedWriter(TextWriter real, bool stderr) : TextWriter
    {
        public override Encoding Encoding => real.Encoding;

        void Emit(string? s)
        {
            if (string.IsNullOrEmpty(s)) return;
            var sink = CellSink.Current.Value;
            if (sink == null) { real.Write(s); return; }
            var live = sink.Live;
            if (live != null)
            {
                var cb = stderr ? live.Context.Stderr : live.Context.Stdout;
                if (cb != null) cb(s); else real.Write(s);
                return;
            }
            sink.Engine.Stray(stderr ? "stderr" : "stdout", s);
        }

        public override void Write(char value) => Emit(value.ToString());
        public override void Write(string? value) => Emit(value);
        public override void Write(char[] buffer, int index, int count) => Emit(new string(buffer, index, count));
        public override void Write(ReadOnlySpan<char> buffer) => Emit(new string(buffer));
        public override void WriteLine() => Emit(NewLine);
        public override void WriteLine(string? value) => Emit(value + NewLine);
        public override void Flush() { if (CellSink.Current.Value == null) real.Flush(); }
    }

    sealed class RoutedReader(TextReader real) : TextReader
    {
        static Func<string, string?>? Input => CellSink.Current.Value?.Live?.Context.Input;

        public override string? ReadLine() => Input is { } input ? input("") : real.ReadLine();
        public override int Peek() => Input != null ? -1 : real.Peek();
        public override int Read() => Input is { } input ? (input("") is { Length: > 0 } s ? s[0] : -1) : real.Read();
        public override string ReadToEnd() => Input is { } input ? input("") ?? "" : real.ReadToEnd();
    }
}
