using System.Text;
using Lab.Cli.Engine;
using Lab.Cli.Highlight;

namespace Lab.Cli.Repl;

/// <summary>
/// A small line editor for a terminal: ←/→, Home/End (Ctrl+A/E), Backspace/Delete, Ctrl+U (clear), ↑/↓ history
/// (kept in ~/.lab_repl_history), Tab completion from the engine (one match inserts it, several insert their
/// common prefix and list them), Ctrl+D on an empty line for end of input. One line at a time; the REPL joins
/// lines into a submission. With a <see cref="CSharpHighlighter"/> the line is coloured as it is typed, by the same
/// classifier and kinds as the book's code (keywords blue, types cyan, methods yellow, strings red...).
/// </summary>
sealed class LineEditor
{
    readonly NotebookEngine _engine;
    readonly string? _historyPath;
    readonly List<string> _history = new();
    readonly CSharpHighlighter? _highlighter;
    readonly List<string> _usings;
    volatile bool _highlighterReady;

    /// <param name="highlighter">Colours the line being typed; null for plain text.</param>
    /// <param name="usings">Namespaces the session imports (the REPL adds those a submission's usings bring).</param>
    public LineEditor(NotebookEngine engine, string? historyPath, CSharpHighlighter? highlighter = null, List<string>? usings = null)
    {
        _engine = engine;
        _historyPath = historyPath;
        _highlighter = highlighter;
        _usings = usings ?? new List<string>();
        // Roslyn's first classification loads the IDE's MEF parts and compiles against Lab.dll (seconds); lines are
        // drawn plain until that is done, then about 20 ms a redraw.
        if (highlighter != null)
            _ = Task.Run(() => { highlighter.Classify("var x = 1;", _usings.ToList()); _highlighterReady = true; });
        try
        {
            if (historyPath != null && File.Exists(historyPath))
                _history.AddRange(File.ReadAllLines(historyPath).Select(l => l.Replace("\\n", "\n")).TakeLast(500));
        }
        catch (IOException) { }
    }

    public void AddHistory(string entry)
    {
        if (string.IsNullOrWhiteSpace(entry) || _history.Count > 0 && _history[^1] == entry) return;
        _history.Add(entry);
        try { if (_historyPath != null) File.AppendAllText(_historyPath, entry.Replace("\n", "\\n") + "\n"); }
        catch (IOException) { }
    }

    /// <summary>Reads a line; <paramref name="before"/> is the submission's earlier lines (completion sees them). Null at end of input.</summary>
    public string? ReadLine(string prompt, string before)
    {
        var o = ConsoleRouter.RealOut;
        var line = new StringBuilder();
        int pos = 0, hist = _history.Count;
        string? stash = null;
        o.Write(prompt);
        o.Flush();

        void Redraw()
        {
            o.Write("\r" + prompt + Coloured(before, line.ToString()) + "\x1b[K");
            var back = line.Length - pos;
            if (back > 0) o.Write($"\x1b[{back}D");
            o.Flush();
        }

        while (true)
        {
            ConsoleKeyInfo key;
            try { key = Console.ReadKey(intercept: true); }
            catch (InvalidOperationException) { return Console.In.ReadLine(); }
            var ctrl = (key.Modifiers & ConsoleModifiers.Control) != 0;
            switch (key.Key)
            {
                case ConsoleKey.Enter:
                    o.WriteLine();
                    return line.ToString();
                case ConsoleKey.D when ctrl:
                    if (line.Length == 0) { o.WriteLine(); return null; }
                    if (pos < line.Length) { line.Remove(pos, 1); Redraw(); }
                    break;
                case ConsoleKey.C when ctrl:
                    o.WriteLine("^C");
                    line.Clear(); pos = 0;
                    o.Write(prompt);
                    break;
                case ConsoleKey.LeftArrow: if (pos > 0) { pos--; Redraw(); } break;
                case ConsoleKey.RightArrow: if (pos < line.Length) { pos++; Redraw(); } break;
                case ConsoleKey.Home: pos = 0; Redraw(); break;
                case ConsoleKey.A when ctrl: pos = 0; Redraw(); break;
                case ConsoleKey.End: pos = line.Length; Redraw(); break;
                case ConsoleKey.E when ctrl: pos = line.Length; Redraw(); break;
                case ConsoleKey.U when ctrl: line.Clear(); pos = 0; Redraw(); break;
                case ConsoleKey.Backspace:
                    if (pos > 0) { line.Remove(--pos, 1); Redraw(); }
                    break;
                case ConsoleKey.Delete:
                    if (pos < line.Length) { line.Remove(pos, 1); Redraw(); }
                    break;
                case ConsoleKey.UpArrow:
                    if (hist > 0)
                    {
                        if (hist == _history.Count) stash = line.ToString();
                        hist--;
                        line.Clear().Append(_history[hist].Replace("\n", " "));
                        pos = line.Length; Redraw();
                    }
                    break;
                case ConsoleKey.DownArrow:
                    if (hist < _history.Count)
                    {
                        hist++;
                        line.Clear().Append(hist == _history.Count ? stash ?? "" : _history[hist].Replace("\n", " "));
                        pos = line.Length; Redraw();
                    }
                    break;
                case ConsoleKey.Tab:
                    Complete(before, line, ref pos, prompt);
                    Redraw();
                    break;
                default:
                    if (key.KeyChar != '\0' && !char.IsControl(key.KeyChar))
                    {
                        line.Insert(pos++, key.KeyChar);
                        // Coloured: redraw, since a new character can change the word's colour ("va" → "var"); while
                        // more keys wait (a paste) just echo, and colour when the last one is in.
                        if (pos == line.Length && (!Colouring || MoreKeys())) { o.Write(key.KeyChar); o.Flush(); } else Redraw();
                    }
                    break;
            }
        }
    }

    bool Colouring => _highlighter != null && _highlighterReady;

    static bool MoreKeys()
    {
        try { return Console.KeyAvailable; } catch (InvalidOperationException) { return false; }
    }

    /// <summary><paramref name="line"/> with ANSI colours, classified after <paramref name="before"/> (the submission's earlier lines).</summary>
    string Coloured(string before, string line)
    {
        if (!Colouring || line.Length == 0) return line;
        var code = before + line;
        return CSharpHighlighter.Ansi(code, _highlighter!.Classify(code, _usings.ToList()), before.Length);
    }

    void Complete(string before, StringBuilder line, ref int pos, string prompt)
    {
        var code = before + line;
        var cursor = before.Length + pos;
        IReadOnlyList<Completion> items;
        try { items = _engine.CompleteAsync(code, cursor).WaitAsync(TimeSpan.FromSeconds(10)).GetAwaiter().GetResult(); }
        catch (Exception) { return; }
        if (items.Count == 0) return;
        var start = items[0].Start - before.Length;
        if (start < 0 || start > pos) return;
        var typed = line.ToString(start, pos - start);
        var texts = items.Select(i => i.Text).Distinct().ToList();
        string insert;
        if (texts.Count == 1) insert = texts[0];
        else
        {
            insert = texts.Aggregate((a, b) => CommonPrefix(a, b));
            if (insert.Length <= typed.Length)
            {
                var o = ConsoleRouter.RealOut;
                o.WriteLine();
                o.WriteLine(string.Join("  ", texts.Take(40)) + (texts.Count > 40 ? $"  … {texts.Count - 40} more" : ""));
                return;
            }
        }
        line.Remove(start, pos - start).Insert(start, insert);
        pos = start + insert.Length;
    }

    static string CommonPrefix(string a, string b)
    {
        int i = 0;
        while (i < a.Length && i < b.Length && char.ToLowerInvariant(a[i]) == char.ToLowerInvariant(b[i])) i++;
        return a[..i];
    }
}
