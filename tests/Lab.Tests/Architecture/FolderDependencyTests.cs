using System.Text;
using System.Text.RegularExpressions;

namespace Lab.Tests.Architecture;

/// <summary>
/// lib/Lab's folders depend on each other in one direction only (ARCHITECTURE.md draws it). A folder F depends on a
/// folder G when a file in F names G's namespace: a <c>using Lab.G;</c>, <c>using static Lab.G.T;</c> or a qualified
/// <c>Lab.G.T</c> in code (comments do not count, strings do: better a false edge than a hidden one). The root
/// folder's types (LabResources, Check, Keep...) are in scope everywhere without a using, so a folder that names one
/// depends on the root. Any cycle fails, naming the files behind each edge.
/// </summary>
public class FolderDependencyTests(ITestOutputHelper output)
{
    const string Root = "(root)";

    [Fact]
    public void NoFolderOfTheLibraryDependsOnOneThatDependsOnItBack()
    {
        var graph = FolderGraph.Of(Path.Combine(RepoRoot.Path, "lib", "Lab"));
        output.WriteLine(graph.Describe());
        var cycles = graph.Cycles();
        Assert.True(cycles.Count == 0, "lib/Lab's folders depend on each other in a cycle:\n" + string.Join("\n", cycles));
    }

    [Fact]
    public void TheCheckSeesACycleAndNamesItsFiles()
    {
        // The check itself, on a made-up library: A uses B, B names A qualified, C uses the root, the root uses C.
        var dir = Directory.CreateTempSubdirectory("lab-folders-").FullName;
        try
        {
            Write(dir, "A/One.cs", "using Lab.B;\nnamespace Lab.A;\nclass One { Two t; }");
            Write(dir, "B/Two.cs", "namespace Lab.B;\n// Lab.C in a comment is no dependency\nclass Two { Lab.A.One o; }");
            Write(dir, "C/Three.cs", "namespace Lab.C;\nclass Three { void M() => Tracker.Track(this); }");
            Write(dir, "Tracker.cs", "namespace Lab;\npublic static class Tracker { public static void Track(object o) { var x = new Lab.C.Three(); } }");
            var graph = FolderGraph.Of(dir);
            Assert.Equal(new[] { "B" }, graph.DependenciesOf("A"));
            Assert.Equal(new[] { "A" }, graph.DependenciesOf("B"));
            Assert.Equal(new[] { Root }, graph.DependenciesOf("C"));
            var cycles = graph.Cycles();
            Assert.Equal(2, cycles.Count);
            Assert.Contains(cycles, c => c.Contains("A -> B (One.cs)") && c.Contains("B -> A (Two.cs)"));
            Assert.Contains(cycles, c => c.Contains("C -> (root) (Three.cs)") && c.Contains("(root) -> C (Tracker.cs)"));
        }
        finally { Directory.Delete(dir, true); }
    }

    static void Write(string dir, string file, string text)
    {
        var path = Path.Combine(dir, file);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, text);
    }

    /// <summary>Folder to folder edges of one library, each with the files that make it.</summary>
    sealed class FolderGraph
    {
        readonly SortedDictionary<string, SortedDictionary<string, SortedSet<string>>> _edges = new(StringComparer.Ordinal);

        public static FolderGraph Of(string libDir)
        {
            var files = Directory.EnumerateFiles(libDir, "*.cs", SearchOption.AllDirectories)
                .Select(f => (Path: f, Rel: Path.GetRelativePath(libDir, f)))
                .Where(f => !f.Rel.StartsWith("obj" + Path.DirectorySeparatorChar) && !f.Rel.StartsWith("bin" + Path.DirectorySeparatorChar))
                .Select(f => (f.Path, Folder: f.Rel.Contains(Path.DirectorySeparatorChar) ? f.Rel[..f.Rel.IndexOf(Path.DirectorySeparatorChar)] : Root))
                .ToList();
            var folders = files.Select(f => f.Folder).ToHashSet();
            var code = files.ToDictionary(f => f.Path, f => WithoutComments(File.ReadAllText(f.Path)));
            var rootTypes = files.Where(f => f.Folder == Root)
                .SelectMany(f => Regex.Matches(code[f.Path], @"\b(?:record\s+(?:struct|class)|class|struct|record|enum|interface|delegate\s+[\w<>\[\],?]+)\s+(\w+)").Select(m => m.Groups[1].Value))
                .ToHashSet();
            var rootUse = rootTypes.Count == 0 ? null : new Regex(@"(?<![\w.])(?:" + string.Join("|", rootTypes.Select(Regex.Escape)) + @")\b");

            var g = new FolderGraph();
            foreach (var (path, folder) in files)
            {
                foreach (Match m in Regex.Matches(code[path], @"\bLab\.(\w+)"))
                {
                    var to = m.Groups[1].Value;
                    if (folders.Contains(to) && to != folder) g.Add(folder, to, path);
                }
                if (folder != Root && rootUse != null && rootUse.IsMatch(code[path])) g.Add(folder, Root, path);
                g._edges.TryAdd(folder, new(StringComparer.Ordinal));
            }
            return g;
        }

        void Add(string from, string to, string file)
        {
            if (!_edges.TryGetValue(from, out var tos)) _edges[from] = tos = new(StringComparer.Ordinal);
            if (!tos.TryGetValue(to, out var why)) tos[to] = why = new(StringComparer.Ordinal);
            why.Add(Path.GetFileName(file));
        }

        public IReadOnlyList<string> DependenciesOf(string folder) => _edges.TryGetValue(folder, out var tos) ? tos.Keys.ToList() : [];

        /// <summary>
        /// One line per cycle found: a strongly connected group of folders (Tarjan), walked from its first folder back
        /// to itself, each edge with the files that make it.
        /// </summary>
        public List<string> Cycles()
        {
            var index = new Dictionary<string, int>();
            var low = new Dictionary<string, int>();
            var stack = new Stack<string>();
            var onStack = new HashSet<string>();
            var groups = new List<List<string>>();
            int next = 0;
            void Visit(string v)
            {
                index[v] = low[v] = next++;
                stack.Push(v); onStack.Add(v);
                foreach (var w in DependenciesOf(v))
                {
                    if (!index.ContainsKey(w)) { Visit(w); low[v] = Math.Min(low[v], low[w]); }
                    else if (onStack.Contains(w)) low[v] = Math.Min(low[v], index[w]);
                }
                if (low[v] != index[v]) return;
                var group = new List<string>();
                string x;
                do { x = stack.Pop(); onStack.Remove(x); group.Add(x); } while (x != v);
                if (group.Count > 1) groups.Add(group);
            }
            foreach (var v in _edges.Keys) if (!index.ContainsKey(v)) Visit(v);
            return groups.Select(Walk).ToList();
        }

        /// <summary>A shortest way from the group's first folder back to itself, inside the group.</summary>
        string Walk(List<string> group)
        {
            var inGroup = group.ToHashSet();
            var start = group.Min(StringComparer.Ordinal)!;
            var cameFrom = new Dictionary<string, string>();
            var queue = new Queue<string>([start]);
            while (queue.Count > 0)
            {
                var v = queue.Dequeue();
                foreach (var w in DependenciesOf(v).Where(inGroup.Contains))
                {
                    if (w == start) { cameFrom[start + "'"] = v; queue.Clear(); break; }
                    if (cameFrom.TryAdd(w, v)) queue.Enqueue(w);
                }
            }
            var path = new List<string> { start };
            for (var v = cameFrom[start + "'"]; v != start; v = cameFrom[v]) path.Add(v);
            path.Add(start);
            path.Reverse(1, path.Count - 2);
            var edges = path.Zip(path.Skip(1), (a, b) => $"{a} -> {b} ({string.Join(", ", _edges[a][b])})");
            return $"  [{string.Join(", ", group.Order(StringComparer.Ordinal))}]: " + string.Join("; ", edges);
        }

        public string Describe()
        {
            var sb = new StringBuilder("lib/Lab's folder dependencies:\n");
            foreach (var (from, tos) in _edges) sb.AppendLine($"  {from} -> {string.Join(", ", tos.Keys)}");
            return sb.ToString();
        }

        /// <summary>The code without // and /* */ comments (doc comments included); strings are left in.</summary>
        static string WithoutComments(string source)
        {
            var sb = new StringBuilder(source.Length);
            for (int i = 0; i < source.Length; i++)
            {
                char c = source[i];
                if (c == '"')
                {
                    // Copy a string literal whole, so a "//" inside it is not taken for a comment ("""raw""" and @"" too).
                    int quotes = 1;
                    while (i + quotes < source.Length && source[i + quotes] == '"') quotes++;
                    if (quotes == 2) { sb.Append("\"\""); i++; continue; }
                    bool verbatim = i > 0 && (source[i - 1] == '@' || (source[i - 1] == '$' && i > 1 && source[i - 2] == '@'));
                    int end = i + quotes;
                    while (end < source.Length)
                    {
                        if (quotes == 1 && !verbatim && source[end] == '\\') { end += 2; continue; }
                        if (quotes == 1 && !verbatim && source[end] == '\n') break;
                        if (source[end] == '"')
                        {
                            int run = 0;
                            while (end + run < source.Length && source[end + run] == '"') run++;
                            if (verbatim && quotes == 1 && run % 2 == 0) { end += run; continue; }
                            if (run >= quotes) { end += quotes; break; }
                            end += run;
                            continue;
                        }
                        end++;
                    }
                    end = Math.Min(end, source.Length);
                    sb.Append(source, i, end - i);
                    i = end - 1;
                }
                else if (c == '\'' && i + 2 < source.Length)
                {
                    // A char literal: '"' must not open a string.
                    int end = source[i + 1] == '\\' ? source.IndexOf('\'', i + 3) : i + 2;
                    if (end > i && source[end] == '\'') { sb.Append(source, i, end - i + 1); i = end; }
                    else sb.Append(c);
                }
                else if (c == '/' && i + 1 < source.Length && source[i + 1] == '/')
                {
                    while (i < source.Length && source[i] != '\n') i++;
                    sb.Append('\n');
                }
                else if (c == '/' && i + 1 < source.Length && source[i + 1] == '*')
                {
                    int end = source.IndexOf("*/", i + 2, StringComparison.Ordinal);
                    i = end < 0 ? source.Length : end + 1;
                    sb.Append(' ');
                }
                else sb.Append(c);
            }
            return sb.ToString();
        }
    }
}
