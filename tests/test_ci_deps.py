"""CI installs exactly the C++ dependencies the README names (one apt line in each)."""
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def apt_packages(text: str) -> list:
    lines = [ln for ln in text.splitlines() if 'apt-get install' in ln and 'nlohmann-json3-dev' in ln]
    assert len(lines) == 1, lines
    words = re.sub(r'>\s*/dev/null', '', lines[0]).split()
    return sorted(w for w in words[words.index('install') + 1:] if not w.startswith('-'))


def test_ci_installs_the_readme_apt_line():
    readme = apt_packages(open(os.path.join(ROOT, 'README.md')).read())
    ci = apt_packages(open(os.path.join(ROOT, '.ci', 'run')).read())
    assert readme == ci
    assert {'nlohmann-json3-dev', 'libcpp-httplib-dev', 'libopencv-dev', 'doctest-dev',
            'libcli11-dev', 'libssl-dev', 'clang'} <= set(ci)


def pip_line(text: str) -> str:
    lines = [ln for ln in text.splitlines() if 'pip install' in ln and '-e ' in ln and '[' in ln]
    assert len(lines) == 1, lines
    line = lines[0].split('pip install', 1)[1]
    return ' '.join(w for w in line.split('&&')[0].split() if not w.startswith('-q')).strip()


def test_ci_pip_installs_the_readme_line():
    """.ci/run installs exactly what the README's set-up line installs (no package only CI knows)."""
    readme = pip_line(open(os.path.join(ROOT, 'README.md')).read())
    ci = pip_line(open(os.path.join(ROOT, '.ci', 'run')).read())
    assert readme == ci and ci.startswith("-e '.[")
