# sourced before each command of a step whose environment names it as envscript
export ANALYSIS_RELEASE=21.2.10
