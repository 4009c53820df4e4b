namespace Gateway.Interop.Tests;

internal static class InteropTools
{
    /// <summary>Debian's python3 (with python3-paho-mqtt), not whatever python3 is first on PATH.</summary>
    public const string Python = "/usr/bin/python3";

    public static string Script(string name) => Path.Combine(AppContext.BaseDirectory, "scripts", name);

    public static string[] Args(params object[] args) =>
        [.. args.Select(a => Convert.ToString(a, System.Globalization.CultureInfo.InvariantCulture)!)];
}
