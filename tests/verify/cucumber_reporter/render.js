// Render a cucumber JSON file with cucumber-html-reporter: node render.js IN.json OUT.html
const reporter = require("cucumber-html-reporter");

reporter.generate({
  theme: "bootstrap",
  jsonFile: process.argv[2],
  output: process.argv[3],
  reportSuiteAsScenarios: true,
  launchReport: false,
  metadata: {},
});
