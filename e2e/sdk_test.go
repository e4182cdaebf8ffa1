package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// The official OpenAI Python SDK must parse what the cache serves — a
// stored answer and a replayed stream — exactly as it parses the model's.
// The SDK is installed into a virtualenv under the temp dir on first use
// (PyPI "openai"); without Python or the package index the test skips.

const openaiSDKVersion = "3.51.0"

var (
	sdkOnce   sync.Once
	sdkPython string
	sdkErr    string
)

func openaiPython(t *testing.T) string {
	t.Helper()
	sdkOnce.Do(func() {
		dir := filepath.Join(os.TempDir(), "modelcache-openai-sdk-"+openaiSDKVersion)
		py := filepath.Join(dir, "bin", "python")
		if err := exec.Command(py, "-c", "import openai").Run(); err == nil {
			sdkPython = py
			return
		}
		if out, err := exec.Command("python3", "-m", "venv", dir).CombinedOutput(); err != nil {
			sdkErr = "python3 -m venv: " + err.Error() + ": " + string(out)
			return
		}
		if out, err := exec.Command(filepath.Join(dir, "bin", "pip"), "install", "--quiet", "--disable-pip-version-check",
			"openai=="+openaiSDKVersion).CombinedOutput(); err != nil {
			sdkErr = "pip install openai: " + err.Error() + ": " + string(out)
			return
		}
		sdkPython = py
	})
	if sdkPython == "" {
		t.Skip("SKIPPED: OpenAI SDK unavailable: " + sdkErr)
	}
	return sdkPython
}

const sdkScript = `
import sys, json, openai
client = openai.OpenAI(base_url=sys.argv[1] + "/v1", api_key="tenant-sdk", max_retries=0)
msgs = [{"role": "user", "content": "Hello from the SDK"}]
out = {}
for attempt in ("miss", "hit"):
    raw = client.chat.completions.with_raw_response.create(model="sim-chat", messages=msgs)
    c = raw.parse()
    out[attempt] = {"cache": raw.headers.get("cache-status"), "content": c.choices[0].message.content,
                    "finish": c.choices[0].finish_reason, "id": c.id, "tokens": c.usage.total_tokens}
    chunks, text, finish, usage = [], "", None, None
    with client.chat.completions.with_streaming_response.create(model="sim-chat", messages=msgs, stream=True,
            stream_options={"include_usage": True}) as resp:
        cache = resp.headers.get("cache-status")
        for ch in resp.parse():
            chunks.append(ch.id)
            if ch.choices:
                text += ch.choices[0].delta.content or ""
                finish = ch.choices[0].finish_reason or finish
            if ch.usage:
                usage = ch.usage.total_tokens
    out[attempt + "_stream"] = {"cache": cache, "content": text, "finish": finish, "chunks": len(chunks), "tokens": usage}
print(json.dumps(out))
`

func TestOpenAISDKParsesCachedAnswers(t *testing.T) {
	e := startEnvoy(t, envoyOpts{Config: stampedeRoutes})
	py := openaiPython(t)
	script := filepath.Join(t.TempDir(), "sdk.py")
	os.WriteFile(script, []byte(sdkScript), 0o644)
	out, err := exec.Command(py, script, e.URL).CombinedOutput()
	if err != nil {
		t.Fatalf("SDK run failed: %v\n%s", err, out)
	}
	s := string(out)
	t.Log(s)
	for _, want := range []string{`"miss": {"cache": "modelcache; fwd=miss`, `"hit": {"cache": "modelcache; hit`,
		`"miss_stream": {"cache": "modelcache; fwd=miss`, `"hit_stream": {"cache": "modelcache; hit`} {
		if !strings.Contains(s, want) {
			t.Fatalf("missing %s", want)
		}
	}
	// The SDK saw the same message, finish reason, ids and usage from the
	// cache as from the model, streamed and not.
	var doc map[string]map[string]any
	if err := jsonUnmarshal(out, &doc); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"content", "finish", "tokens"} {
		if doc["miss"][k] != doc["hit"][k] || doc["miss_stream"][k] != doc["hit_stream"][k] {
			t.Fatalf("%s differs between model and cache: %v / %v", k, doc["miss"], doc["hit"])
		}
	}
	if doc["miss_stream"]["chunks"] != doc["hit_stream"]["chunks"] || doc["miss"]["content"] != doc["miss_stream"]["content"] {
		t.Fatalf("streams differ: %v / %v", doc["miss_stream"], doc["hit_stream"])
	}
}
