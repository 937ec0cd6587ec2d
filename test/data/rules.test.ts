import assert from "node:assert/strict";
import { test } from "node:test";
import { cRules } from "../../src/data/audit/rules-c.ts";
import { javascriptRules } from "../../src/data/audit/rules-js.ts";
import { pythonRules } from "../../src/data/audit/rules-python.ts";

/** [rule, code that must trigger it, code that must not trigger it] — hand-written, not from the EM files. */
const PYTHON: [string, string, string][] = [
  [
    "PY-XSS-RESPONSE",
    `@app.get("/hi")\ndef hi():\n    who = request.args["who"]\n    return "<p>Hello " + who + "</p>"`,
    `@app.get("/hi")\ndef hi():\n    who = request.args["who"]\n    return "<p>Hello " + html.escape(who) + "</p>"`,
  ],
  [
    "PY-XSS-RESPONSE",
    `def page(q):\n    body = "<ul><li>{}</li></ul>".format(q)\n    return make_response(body)`,
    `def page(q):\n    body = "<ul><li>{}</li></ul>".format(escape(q))\n    return make_response(body)`,
  ],
  [
    "PY-XSS-RESPONSE",
    `@app.route("/echo")\ndef echo():\n    msg = request.form.get("msg")\n    return msg`,
    `@app.route("/echo")\ndef echo():\n    msg = request.form.get("msg")\n    return jsonify(msg=msg)`,
  ],
  [
    "PY-XSS-TEMPLATE-STR",
    `def v():\n    n = request.args.get("n")\n    return render_template_string(f"Hi {n}")`,
    `def v():\n    n = request.args.get("n")\n    return render_template_string("Hi {{ n }}", n=n)`,
  ],
  ["PY-JINJA-AUTOESCAPE", `t = jinja2.Template(src, autoescape=False)`, `t = jinja2.Template(src, autoescape=True)`],
  ["PY-JINJA-AUTOESCAPE", `app.jinja_env.autoescape = False`, `app.jinja_env.autoescape = True`],
  ["PY-CHMOD-WORLD", `os.chmod(report, 0o666)`, `os.chmod(report, 0o644)`],
  ["PY-CHMOD-WORLD", `MODE = 0o777\nos.makedirs(d, mode=MODE)`, `MODE = 0o750\nos.makedirs(d, mode=MODE)`],
  ["PY-CHMOD-WORLD", `os.chmod(p, stat.S_IRWXU | stat.S_IWOTH)`, `os.chmod(p, stat.S_IRUSR | stat.S_IWUSR)`],
  [
    "PY-SQL-STRING",
    `sql = "DELETE FROM carts WHERE owner = '%s'" % owner\ndb.execute(sql)`,
    `db.execute("DELETE FROM carts WHERE owner = %s", (owner,))`,
  ],
  [
    "PY-SQL-STRING",
    `q = "SELECT * FROM pets WHERE "\nq += f"kind = '{kind}'"\ncur.execute(q)`,
    `q = "SELECT * FROM pets WHERE kind = :kind"\ncur.execute(q, {"kind": kind})`,
  ],
  [
    "PY-SQL-STRING",
    `cur.execute("UPDATE t SET n = " + str(n) + " WHERE id = " + ident)`,
    `cur.execute("UPDATE t SET n = ? WHERE id = ?", (n, ident))`,
  ],
  [
    "PY-TAR-EXTRACTALL",
    `with tarfile.open(p) as t:\n    t.extractall("/srv/data")`,
    `with tarfile.open(p) as t:\n    t.extractall("/srv/data", filter="data")`,
  ],
  ["PY-TAR-EXTRACTALL", `shutil.unpack_archive(upload, dest)`, `with zipfile.ZipFile(p) as z:\n    z.extractall(dest)`],
  ["PY-DESERIALIZE", `obj = pickle.loads(request.data)`, `obj = json.loads(request.data)`],
  ["PY-DESERIALIZE", `cfg = yaml.load(text)`, `cfg = yaml.load(text, Loader=yaml.SafeLoader)`],
  ["PY-DESERIALIZE", `x = marshal.loads(blob)`, `x = marshal.dumps(obj)`],
  ["PY-SHELL-INJECTION", `os.system("ping -c 1 " + host)`, `os.system("sync")`],
  [
    "PY-SHELL-INJECTION",
    `subprocess.call(f"tar czf {name}.tgz {name}", shell=True)`,
    `subprocess.call(["tar", "czf", name + ".tgz", name])`,
  ],
  [
    "PY-SHELL-INJECTION",
    `subprocess.run("ls " + shlex.quote(d) + " && rm " + d, shell=True)`,
    `subprocess.run("ls " + shlex.quote(d), shell=True)`,
  ],
  ["PY-URL-REGEX", `ok = re.match(r"https?://api.shop.net/", u)`, `ok = re.match(r"https?://api\\.shop\\.net/", u)`],
  [
    "PY-URL-SUBSTRING",
    `if "trusted.org" in target_url:\n    go(target_url)`,
    `if urlparse(target_url).hostname == "trusted.org":\n    go(target_url)`,
  ],
  [
    "PY-HARDCODED-SECRET",
    `STRIPE_KEY = 1\nclient_secret = "9fK2mQ7xLp4Zr8Tw"`,
    `client_secret = os.environ["CLIENT_SECRET"]`,
  ],
  ["PY-HARDCODED-SECRET", `if pwd == "letmein42":\n    grant()`, `if check_password_hash(stored, pwd):\n    grant()`],
  [
    "PY-PATH-TRAVERSAL",
    `name = request.args["f"]\nwith open("/data/" + name) as fh:\n    pass`,
    `name = secure_filename(request.args["f"])\nwith open("/data/" + name) as fh:\n    pass`,
  ],
  ["PY-EVAL", `total = eval(request.form["expr"])`, `total = ast.literal_eval(request.form["expr"])`],
  ["PY-OPEN-REDIRECT", `nxt = request.args.get("next")\nreturn redirect(nxt)`, `return redirect(url_for("home"))`],
  ["PY-XXE", `parser = etree.XMLParser(resolve_entities=True)`, `parser = etree.XMLParser(resolve_entities=False)`],
  ["PY-TLS-NOVERIFY", `r = requests.get(u, verify=False)`, `r = requests.get(u, timeout=5)`],
  [
    "PY-WEAK-HASH",
    `digest = hashlib.md5(password.encode()).hexdigest()`,
    `digest = hashlib.md5(file_bytes).hexdigest()`,
  ],
  ["PY-DEBUG", `app.run(host="0.0.0.0", debug=True)`, `app.run(host="0.0.0.0")`],
  ["PY-MKTEMP", `path = tempfile.mktemp()`, `fd, path = tempfile.mkstemp()`],
];

// JavaScript source text: `${…}` inside these strings is the code under test, not a template.
// biome-ignore-start lint/suspicious/noTemplateCurlyInString: source code samples
const JS: [string, string, string][] = [
  [
    "JS-XSS-RESPONSE",
    "app.get('/', (req, res) => {\n  res.send('<p>' + req.query.q + '</p>');\n});",
    "app.get('/', (req, res) => {\n  res.send('<p>' + escapeHtml(req.query.q) + '</p>');\n});",
  ],
  ["JS-XSS-DOM", "box.innerHTML = `<i>${location.search}</i>`;", "box.textContent = location.search;"],
  ["JS-XSS-DOM", "document.write('<b>' + document.cookie + '</b>');", "document.write('<b>static</b>');"],
  [
    "JS-SQL-STRING",
    "db.all(`SELECT * FROM orders WHERE user = '${user}'`);",
    "db.all('SELECT * FROM orders WHERE user = ?', [user]);",
  ],
  [
    "JS-COMMAND-INJECTION",
    "const { host } = req.body;\nexec(`ping -c 1 ${host}`);",
    "execFile('ping', ['-c', '1', host]);",
  ],
  ["JS-EVAL", "const f = new Function('return ' + body)();", "const f = JSON.parse(body);"],
  ["JS-CHMOD-WORLD", "fs.mkdirSync(dir, { mode: 0o777 });", "fs.mkdirSync(dir, { mode: 0o700 });"],
  ["JS-PATH-TRAVERSAL", "res.sendFile('/srv/' + req.params.file);", "res.sendFile(req.params.file, { root: '/srv' });"],
  ["JS-ARCHIVE-EXTRACT", "zip.extractAllTo(target, true);", "zip.getEntries().forEach((e) => check(e));"],
  [
    "JS-DESERIALIZE",
    "const obj = serialize.unserialize(req.cookies.session);",
    "const obj = JSON.parse(req.cookies.session);",
  ],
  [
    "JS-HARDCODED-SECRET",
    "const config = { password: 'Zq8#mW2v!pL5' };",
    "const config = { password: process.env.DB_PASSWORD };",
  ],
  ["JS-OPEN-REDIRECT", "res.redirect(req.query.url);", "res.redirect('/home');"],
  [
    "JS-TLS-NOVERIFY",
    "const agent = new https.Agent({ rejectUnauthorized: false });",
    "const agent = new https.Agent({ keepAlive: true });",
  ],
  [
    "JS-URL-REGEX",
    "if (/^https:\\/\\/cdn.example.com\\//.test(u)) load(u);",
    "if (/^https:\\/\\/cdn\\.example\\.com\\//.test(u)) load(u);",
  ],
  [
    "JS-WEAK-HASH",
    "const h = crypto.createHash('sha1').update(password).digest('hex');",
    "const h = crypto.createHash('sha256').update(fileData).digest('hex');",
  ],
];

// biome-ignore-end lint/suspicious/noTemplateCurlyInString: source code samples

const C: [string, string, string][] = [
  ["C-GETS", "char buf[64];\ngets(buf);", "char buf[64];\nfgets(buf, sizeof buf, stdin);"],
  [
    "C-UNBOUNDED-COPY",
    "void f(char *s) { char d[8]; strcpy(d, s); }",
    "void f(char *s) { char d[8]; strncpy(d, s, sizeof d - 1); }",
  ],
  ["C-SCANF-STRING", 'scanf("%s", name);', 'scanf("%31s", name);'],
  ["C-FORMAT-STRING", "void log_msg(char *m) { printf(m); }", 'void log_msg(char *m) { printf("%s", m); }'],
  [
    "C-SYSTEM",
    'int run(char *f) { char cmd[256]; snprintf(cmd, sizeof cmd, "cat %s", f); return system(cmd); }',
    'int run(void) { return system("date"); }',
  ],
  ["C-CHMOD-WORLD", "chmod(path, 0777);", "chmod(path, 0600);"],
  ["C-TEMPFILE", "char *p = tmpnam(NULL);", "int fd = mkstemp(tmpl);"],
  [
    "C-HARDCODED-SECRET",
    'if (strcmp(password, "opensesame") == 0) grant();',
    "if (verify(password, stored_hash)) grant();",
  ],
];

for (const [lang, cases, rules] of [
  ["python", PYTHON, pythonRules],
  ["javascript", JS, javascriptRules],
  ["c", C, cRules],
] as const) {
  for (const [rule, positive, negative] of cases) {
    test(`${lang} ${rule}: flags the positive case, not the negative one`, () => {
      const pos = rules(positive);
      assert.ok(
        pos.some((f) => f.rule === rule),
        `${rule} missing on:\n${positive}\n→ ${JSON.stringify(pos)}`,
      );
      const neg = rules(negative);
      assert.ok(!neg.some((f) => f.rule === rule), `${rule} false positive on:\n${negative}\n→ ${JSON.stringify(neg)}`);
    });
  }
}

test("findings carry CWE, class and the line of the sink", () => {
  const f = pythonRules("import os\n\n\nos.chmod('/tmp/x', 0o777)\n");
  assert.equal(f.length, 1);
  assert.deepEqual(
    [f[0]!.rule, f[0]!.cwe, f[0]!.class, f[0]!.line],
    ["PY-CHMOD-WORLD", "CWE-732", "file-permissions", 4],
  );
});

test("the positive cases cover at least 10 vulnerability classes", () => {
  const classes = new Set(
    [
      ...pythonRules(PYTHON.map((c) => c[1]).join("\n\n")),
      ...javascriptRules(JS.map((c) => c[1]).join("\n")),
      ...cRules(C.map((c) => c[1]).join("\n")),
    ].map((f) => f.class),
  );
  assert.ok(classes.size >= 10, `only ${classes.size} classes`);
});
