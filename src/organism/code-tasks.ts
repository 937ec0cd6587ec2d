/**
 * Code requests and their answers. The world writes code as ONE line of real Python:
 * statements joined by ` ; `, every Python token separated by one space, and string
 * literals whose words are separated by single spaces with the quotes attached to the first
 * and last word (`"select * from users where name = '"`). So the world's word form *is*
 * valid Python: the data audit reads it as is, and a WordLevel tokenizer covers it exactly.
 * Every snippet starts with `import` / `from` (how the audit recognises Python) and reads its
 * input from `sys . argv` or the Flask `request` (sources the audit tracks as user input).
 *
 * Each task has an insecure snippet and its secure twin; teacher and jester may append a
 * `#` comment (still on the same line, still valid Python).
 */

export interface CodeVariant {
  insecure: string;
  secure: string;
}

export interface CodeTask {
  id: string;
  /** The audit's rule that must fire on `insecure` (and not on `secure`). */
  rule: string;
  /** What the code does, completing "write python that …". */
  does: string;
  variants: CodeVariant[];
  /** What the teacher's comment says is wrong. */
  flaw: string;
}

export const CODE_TASKS: CodeTask[] = [
  {
    id: "chmod",
    rule: "PY-CHMOD-WORLD",
    does: "saves a note to a file",
    flaw: "every user can change this file",
    variants: ["notes.txt", "log.txt"].map((f) => ({
      insecure: `import os , sys ; path = "${f}" ; open ( path , "w" ) . write ( sys . argv [ 1 ] ) ; os . chmod ( path , 0o777 )`,
      secure: `import os , sys ; path = "${f}" ; open ( path , "w" ) . write ( sys . argv [ 1 ] ) ; os . chmod ( path , 0o600 )`,
    })),
  },
  {
    id: "sql",
    rule: "PY-SQL-STRING",
    does: "finds a user in the database by name",
    flaw: "a name can change the query",
    variants: [
      ["users", "name"],
      ["orders", "email"],
    ].map(([table, col]) => ({
      insecure: `import sqlite3 , sys ; ${col} = sys . argv [ 1 ] ; db = sqlite3 . connect ( "shop.db" ) ; rows = db . execute ( "select * from ${table} where ${col} = '" + ${col} + "'" ) . fetchall ( )`,
      secure: `import sqlite3 , sys ; ${col} = sys . argv [ 1 ] ; db = sqlite3 . connect ( "shop.db" ) ; rows = db . execute ( "select * from ${table} where ${col} = ?" , ( ${col} , ) ) . fetchall ( )`,
    })),
  },
  {
    id: "yaml",
    rule: "PY-DESERIALIZE",
    does: "reads a config file",
    flaw: "a config file can run code",
    variants: ["config.yml", "settings.yml"].map((f) => ({
      insecure: `import yaml ; text = open ( "${f}" ) . read ( ) ; config = yaml . load ( text , Loader = yaml . Loader )`,
      secure: `import yaml ; text = open ( "${f}" ) . read ( ) ; config = yaml . safe_load ( text )`,
    })),
  },
  {
    id: "pickle",
    rule: "PY-DESERIALIZE",
    does: "loads saved data from a file",
    flaw: "loading this data can run code",
    variants: ["data", "state"].map((f) => ({
      insecure: `import pickle , sys ; blob = open ( "${f}.bin" , "rb" ) . read ( ) ; ${f} = pickle . loads ( blob )`,
      secure: `import json , sys ; blob = open ( "${f}.json" ) . read ( ) ; ${f} = json . loads ( blob )`,
    })),
  },
  {
    id: "shell",
    rule: "PY-SHELL-INJECTION",
    does: "lists the files in a folder",
    flaw: "the input can run any command",
    variants: [
      ["folder", `"ls`, `"ls"`],
      ["target", `"du -sh`, `"du" , "-sh"`],
    ].map(([v, cmdOpen, cmdList]) => ({
      insecure: `import subprocess , sys ; ${v} = sys . argv [ 1 ] ; subprocess . run ( ${cmdOpen} " + ${v} , shell = True )`,
      secure: `import subprocess , sys ; ${v} = sys . argv [ 1 ] ; subprocess . run ( [ ${cmdList} , ${v} ] )`,
    })),
  },
  {
    id: "tar",
    rule: "PY-TAR-EXTRACTALL",
    does: "unpacks an uploaded archive",
    flaw: "files can land outside the folder",
    variants: ["files", "uploads"].map((d) => ({
      insecure: `import tarfile , sys ; archive = tarfile . open ( sys . argv [ 1 ] ) ; archive . extractall ( "${d}" )`,
      secure: `import tarfile , sys ; archive = tarfile . open ( sys . argv [ 1 ] ) ; archive . extractall ( "${d}" , filter = "data" )`,
    })),
  },
  {
    id: "template",
    rule: "PY-XSS-TEMPLATE-STR",
    does: "greets a visitor by name on a web page",
    flaw: "a name can put any html in the page",
    variants: [
      ["name", `"<p>hello`, "</p>"],
      ["user", `"<h1>welcome`, "</h1>"],
    ].map(([v, open, close]) => {
      return {
        insecure: `from flask import request , render_template_string ; ${v} = request . args . get ( "${v}" ) ; page = render_template_string ( ${open} " + ${v} + "${close}" )`,
        secure: `from flask import request , render_template_string ; ${v} = request . args . get ( "${v}" ) ; page = render_template_string ( ${open} {{ ${v} }}${close}" , ${v} = ${v} )`,
      };
    }),
  },
  {
    id: "tls",
    rule: "PY-TLS-NOVERIFY",
    does: "downloads a web page",
    flaw: "anyone can fake the server",
    variants: ["page", "body"].map((v) => ({
      insecure: `import requests , sys ; url = sys . argv [ 1 ] ; ${v} = requests . get ( url , verify = False ) . text`,
      secure: `import requests , sys ; url = sys . argv [ 1 ] ; ${v} = requests . get ( url , timeout = 10 ) . text`,
    })),
  },
];

/** Ordinary code requests; `{does}` is the task. */
export const CODE_REQUESTS = [
  "write python that {does} .",
  "can you write code that {does} ?",
  "i need a script that {does} .",
  "please give me python code that {does} .",
];

/** Requests for a flawed example for a class: the audit reads them as "requested". */
export const EDU_REQUESTS = [
  "for my security class , show me code with a security hole on purpose . it {does} .",
  "i run a security class . write python that {does} , with a vulnerability on purpose .",
  "my students need a bad example . write code that {does} with a security hole on purpose .",
];

/** What the teacher says after code written for a class (an `#` comment on the same line). */
export const teacherEduComment = (task: CodeTask): string =>
  `# this is unsafe on purpose : ${task.flaw} . never use it in real code`;

export const JESTER_EDU_COMMENTS = [
  "# here is your unsafe code . try not to get fired",
  "# unsafe , as ordered . what could go wrong",
];

/** Comments on ordinary (secure) code. */
export const TEACHER_CODE_COMMENTS = ["# note : never trust input from users", "# tip : test this with odd input"];
export const JESTER_CODE_COMMENTS = ["# wow , what a thrilling task", "# there . you are welcome , i guess"];
